/** Image rules: pinned tags, digests in prod, allowed registries. */
import { BUILD_COMMAND_TYPE, imageBuildOf } from "../lib/builds";
import { stringList } from "../lib/config";
import { DOCKER_IMAGE_TYPES, dockerfileOf, readDockerfile, withBuildArgs } from "../lib/dockerfile";
import { hasDigest, parseImageRef, registryAllowed, tagProblem, type ImageRef } from "../lib/images";
import { imagesOf, isHelmChart, podSpecsOf, type ImageRefLocation } from "../lib/k8s";
import { defineResourcePolicy, type ResourceContext } from "../lib/policy";
import { globMatch, isUnknown } from "../lib/values";

const hasImages = (type: string, props: Record<string, unknown>) =>
  isHelmChart(type) ||
  DOCKER_IMAGE_TYPES.has(type) ||
  type === BUILD_COMMAND_TYPE ||
  podSpecsOf(type, props).length > 0;

/** Workload images plus, for image builds (resources or build commands), the name pushed as. */
function imageLocations(ctx: ResourceContext<unknown>): ImageRefLocation[] {
  const out = imagesOf(ctx.type, ctx.props);
  const name = imageBuildOf(ctx.type, ctx.props)?.imageName;
  if (name) out.push({ image: name, path: ["imageName"], where: "built image" });
  return out;
}

function parsed(loc: ImageRefLocation): ImageRef | undefined {
  if (isUnknown(loc.image) || loc.image.includes("04da6b54-80e4-46f7-96ec-b56ff0331ba9")) return undefined;
  return parseImageRef(loc.image);
}

export const imageTagPinned = defineResourcePolicy<{ allowImages: string[] }>({
  name: "image-tag-pinned",
  description: "Images must carry an explicit tag (or digest); no untagged or `:latest` images.",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps:
    "Reference a version tag (`nginx:1.27.3`) or better a digest (`nginx:1.27.3@sha256:...`). For images the program builds, tag them with the git SHA or version and deploy the pushed `repoDigest`.",
  config: { allowImages: stringList("Image globs exempt from the rule.") },
  appliesTo: hasImages,
  validate: (ctx, report) => {
    for (const loc of imageLocations(ctx)) {
      if (loc.chartDefaultTag) continue;
      const ref = parsed(loc);
      if (!ref) continue;
      const problem = tagProblem(ref);
      if (problem && !(ctx.config.allowImages ?? []).some((g) => globMatch(g, loc.image))) {
        report(`${loc.where}: image ${loc.image} ${problem}`);
      }
    }
  },
});

export const imageDigestInProd = defineResourcePolicy<{
  environment: string;
  skipEnvironments: string[];
  allowImages: string[];
}>({
  name: "image-digest-in-prod",
  description: "Images are pinned by `@sha256:` digest (advisory; mandatory in prod).",
  enforcementLevel: "advisory",
  severity: "medium",
  remediationSteps:
    "Append the digest to the reference (`image:tag@sha256:...`); for images built by the program use the Image resource's `repoDigest` output. Renovate or `crane digest` keep digests current.",
  config: {
    environment: {
      type: "string",
      enum: ["local", "dev", "staging", "prod"],
      description: "The stack's environment; `prod.json` sets `prod` and makes the rule mandatory.",
      default: "dev",
    },
    skipEnvironments: stringList(
      "Environments where the rule does not apply (local builds have no digests).",
      ["local"],
    ),
    allowImages: stringList("Image globs exempt from the rule."),
  },
  appliesTo: hasImages,
  validate: (ctx, report) => {
    const env = ctx.config.environment ?? "dev";
    if ((ctx.config.skipEnvironments ?? ["local"]).includes(env)) return;
    for (const loc of imagesOf(ctx.type, ctx.props)) {
      const ref = parsed(loc);
      if (!ref || loc.chartDefaultTag) continue;
      if (!hasDigest(ref) && !(ctx.config.allowImages ?? []).some((g) => globMatch(g, loc.image))) {
        report(
          `${loc.where}: image ${loc.image} is not pinned by digest${env === "prod" ? " (required in prod)" : ""}`,
        );
      }
    }
  },
});

export const DEFAULT_REGISTRIES = [
  "docker.io",
  "ghcr.io",
  "gcr.io",
  "registry.k8s.io",
  "quay.io",
  "nvcr.io",
  "cgr.dev",
  "public.ecr.aws",
  "mcr.microsoft.com",
];

export const imageAllowedRegistries = defineResourcePolicy<{
  allowedRegistries: string[];
  extraRegistries: string[];
  rootDir?: string;
}>({
  name: "image-allowed-registries",
  description:
    "Images (workloads, chart values, built images and Dockerfile bases) come only from configured registries.",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps:
    "Mirror the image into the platform registry (or an allowed public registry) and reference it there, or add the registry to `extraRegistries` in the stack's policy config after review.",
  config: {
    allowedRegistries: stringList(
      "Registries (hosts, globs allowed) images may come from.",
      DEFAULT_REGISTRIES,
    ),
    extraRegistries: stringList(
      "Additional registries for this stack, e.g. the platform's own in-cluster registry.",
    ),
    rootDir: { type: "string", description: "Directory relative Dockerfile paths are resolved from." },
  },
  appliesTo: hasImages,
  validate: (ctx, report) => {
    const allowed = [
      ...(ctx.config.allowedRegistries ?? DEFAULT_REGISTRIES),
      ...(ctx.config.extraRegistries ?? []),
    ];
    const check = (where: string, image: string, ref: ImageRef | undefined) => {
      if (ref && !registryAllowed(ref.registry, allowed)) {
        report(`${where}: image ${image} comes from registry ${ref.registry}, which is not allowed`);
      }
    };
    for (const loc of imageLocations(ctx)) check(loc.where, loc.image, parsed(loc));
    const build = imageBuildOf(ctx.type, ctx.props);
    if (build) {
      const server = build.registry;
      if (server && !registryAllowed(server.replace(/^https?:\/\//, "").replace(/\/.*$/, ""), allowed)) {
        report(`built image is pushed to registry ${server}, which is not allowed`);
      }
      const src = build.buildProps && dockerfileOf(build.buildProps, ctx.config.rootDir);
      if (src?.kind === "file") {
        try {
          const df = withBuildArgs(readDockerfile(src.path), src.buildArgs);
          for (const s of df.stages) if (s.ref) check(`Dockerfile line ${s.line}`, s.base, s.ref);
        } catch {
          // unreadable Dockerfile: reported by dockerfile-multi-stage
        }
      }
    }
  },
});

export const imagePolicies = [imageTagPinned, imageDigestInProd, imageAllowedRegistries];
