/** Container image references: parsing, pinning and registry matching. */
import { globMatch } from "./values";

export interface ImageRef {
  /** Registry host (with port), `docker.io` for Docker Hub names. */
  readonly registry: string;
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
}

const DOCKER_HUB_ALIASES = new Set(["index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"]);

/** Parses `[registry/]repo[:tag][@digest]`; undefined for empty or templated (`${VAR}`) references. */
export function parseImageRef(ref: string): ImageRef | undefined {
  const trimmed = ref.trim();
  if (!trimmed || /[\s${}]/.test(trimmed)) return undefined;
  const at = trimmed.indexOf("@");
  const digest = at >= 0 ? trimmed.slice(at + 1) : undefined;
  let name = at >= 0 ? trimmed.slice(0, at) : trimmed;
  let tag: string | undefined;
  const colon = name.lastIndexOf(":");
  if (colon > name.lastIndexOf("/")) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
  }
  let registry = "docker.io";
  const slash = name.indexOf("/");
  if (slash > 0) {
    const first = name.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost") {
      registry = first.toLowerCase();
      name = name.slice(slash + 1);
    }
  }
  if (DOCKER_HUB_ALIASES.has(registry)) registry = "docker.io";
  return {
    registry,
    repository: name,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}

export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** Why an image is not pinned by tag, or undefined when it is. */
export function tagProblem(ref: ImageRef): string | undefined {
  if (ref.digest !== undefined) return DIGEST_RE.test(ref.digest) ? undefined : `has a malformed digest`;
  if (ref.tag === undefined || ref.tag === "") return "has no tag (resolves to :latest)";
  if (ref.tag.toLowerCase() === "latest") return "uses the floating :latest tag";
  return undefined;
}

export function hasDigest(ref: ImageRef): boolean {
  return ref.digest !== undefined && DIGEST_RE.test(ref.digest);
}

/**
 * True when the registry is allowed: entries match the host exactly (an entry without a port
 * matches any port) or as a glob (`*.pkg.dev`).
 */
export function registryAllowed(registry: string, allowed: readonly string[]): boolean {
  const host = registry.replace(/:\d+$/, "");
  for (const entry of allowed) {
    const e = entry.toLowerCase().replace(/\/+$/, "");
    const target = e.includes(":") ? registry : host;
    if (e === target || (e.includes("*") && globMatch(e, target))) return true;
    if (e === "docker.io" && DOCKER_HUB_ALIASES.has(host)) return true;
  }
  return false;
}

/** Image reference without registry for Docker Hub official images, for globs (`node:20-slim`). */
export function displayImage(ref: ImageRef): string {
  const repo = ref.registry === "docker.io" ? ref.repository.replace(/^library\//, "") : ref.repository;
  const name = ref.registry === "docker.io" ? repo : `${ref.registry}/${repo}`;
  return `${name}${ref.tag ? `:${ref.tag}` : ""}`;
}
