/**
 * Image builds a program runs, whatever resource runs them: `@pulumi/docker`'s and
 * `@pulumi/docker-build`'s Image resources, and a local command that runs `docker buildx build`
 * (the platform's ServiceImage: its script reads named `IMAGE_*` variables). One description of
 * each — the image name, where it is pushed, its Dockerfile source, its attestations — so the
 * rules judge what is built, not which resource builds it.
 */
import { DOCKER_IMAGE_TYPES } from "./dockerfile";
import { obj, str, type Obj } from "./values";

export const BUILD_COMMAND_TYPE = "command:local:Command";

const BUILDX_RE = /\bdocker\s+(?:buildx\s+)?build\b/;

export interface ImageBuildInfo {
  /** Which kind of resource builds it. */
  readonly kind: "docker-image" | "docker-build-image" | "buildx-command";
  /** The name it is pushed as (`registry/repo:tag`), when known. */
  readonly imageName?: string;
  /** The registry it is pushed to, when known. */
  readonly registry?: string;
  /** Docker-Image-shaped build inputs (`{ build: { context, dockerfile, args } }`) for lib/dockerfile's `dockerfileOf`. */
  readonly buildProps?: Obj;
  /** The SBOM attestation's setting as the build passes it (`--sbom`/`--attest type=sbom`); undefined: none asked for. */
  readonly sbom?: string;
  /** The provenance attestation's setting (`--provenance`/`--attest type=provenance`); undefined: none asked for. */
  readonly provenance?: string;
}

/** The script of a command resource (create, then update), when it runs a Docker build. */
function buildScript(props: Obj): string | undefined {
  const script = [str(props["create"]), str(props["update"])].filter((s): s is string => !!s).join("\n");
  return BUILDX_RE.test(script) ? script : undefined;
}

/** A flag's value in a script (`--sbom=true`, `--sbom "$IMAGE_SBOM"`), its variables resolved from `env`. */
function flagValue(script: string, flag: string, env: Obj): string | undefined {
  const m = new RegExp(`--${flag}(?:=|\\s+)(?:"([^"]*)"|'([^']*)'|(\\S+))`).exec(script);
  if (!m) return undefined;
  const raw = m[1] ?? m[2] ?? m[3] ?? "";
  return raw.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, v: string) => str(env[v]) ?? "");
}

/** `--attest type=<kind>,...` in a script: the attestation's attributes, or undefined. */
function attestValue(script: string, kind: string, env: Obj): string | undefined {
  for (const m of script.matchAll(/--attest(?:=|\s+)(?:"([^"]*)"|(\S+))/g)) {
    const v = (m[1] ?? m[2] ?? "").replace(
      /\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g,
      (_, n: string) => str(env[n]) ?? "",
    );
    if (v.split(",").includes(`type=${kind}`)) return v;
  }
  return undefined;
}

/** The image build a resource runs, or undefined when it runs none. */
export function imageBuildOf(type: string, props: Obj): ImageBuildInfo | undefined {
  if (DOCKER_IMAGE_TYPES.has(type)) {
    if (type === "docker-build:index:Image") {
      const tags = Array.isArray(props["tags"]) ? props["tags"] : [];
      const registries = Array.isArray(props["registries"]) ? props["registries"] : [];
      const imageName = str(tags[0]);
      const registry = str(obj(registries[0])?.["address"]);
      const context = str(obj(props["context"])?.["location"]);
      const dockerfile = str(obj(props["dockerfile"])?.["location"]);
      return {
        kind: "docker-build-image",
        ...(imageName ? { imageName } : {}),
        ...(registry ? { registry } : {}),
        ...(context
          ? {
              buildProps: {
                build: { context, ...(dockerfile ? { dockerfile } : {}), args: props["buildArgs"] },
              },
            }
          : {}),
      };
    }
    const imageName = str(props["imageName"]);
    const registry = str(obj(props["registry"])?.["server"]);
    return {
      kind: "docker-image",
      ...(imageName ? { imageName } : {}),
      ...(registry ? { registry } : {}),
      buildProps: props,
    };
  }
  if (type !== BUILD_COMMAND_TYPE) return undefined;
  const script = buildScript(props);
  if (!script) return undefined;
  const env = obj(props["environment"]) ?? {};
  const imageName = flagValue(script, "tag", env);
  const registry = str(env["IMAGE_REGISTRY"]);
  const context = str(env["IMAGE_CONTEXT"]);
  const dockerfile = str(env["IMAGE_DOCKERFILE"]) ?? flagValue(script, "file", env);
  const buildArgs: Obj = {};
  for (const line of (str(env["IMAGE_BUILD_ARGS"]) ?? "").split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) buildArgs[line.slice(0, eq)] = line.slice(eq + 1);
  }
  const sbom = flagValue(script, "sbom", env) ?? attestValue(script, "sbom", env);
  const provenance = flagValue(script, "provenance", env) ?? attestValue(script, "provenance", env);
  return {
    kind: "buildx-command",
    ...(imageName ? { imageName } : {}),
    ...(registry ? { registry } : {}),
    ...(context
      ? { buildProps: { build: { context, ...(dockerfile ? { dockerfile } : {}), args: buildArgs } } }
      : {}),
    ...(sbom !== undefined ? { sbom } : {}),
    ...(provenance !== undefined ? { provenance } : {}),
  };
}

/** Whether an attestation setting turns it on (`true`, `1`, `mode=max`, `type=sbom,...`), not `false`/`0`. */
export function attestationOn(setting: string | undefined): boolean {
  if (setting === undefined) return false;
  const s = setting.trim().toLowerCase();
  return s !== "" && s !== "false" && s !== "0" && !/(^|,)disabled=true(,|$)/.test(s);
}

/** The provenance mode a setting asks for (`min`, the buildx default, unless `mode=max`). */
export function provenanceMode(setting: string): "min" | "max" {
  return /(^|,)mode=max(,|$)/.test(setting.toLowerCase()) ? "max" : "min";
}

/**
 * The Docker-Image-shaped build inputs of whatever resource builds an image (an Image resource's
 * own inputs, or those a buildx command's variables describe): what the Dockerfile and build-arg
 * rules read, so they judge a build whichever resource runs it.
 */
export function buildPropsOf(type: string, props: Obj): Obj | undefined {
  return imageBuildOf(type, props)?.buildProps;
}
