/**
 * Every pinned version in one place: charts (repository + version) and images (tag, and digest
 * where the platform pulls a third-party image into its own workloads). Bump here, nowhere else.
 */

export interface ChartVersion {
  readonly chart: string;
  readonly version: string;
  readonly repo: string;
}

export interface ImageVersion {
  readonly repository: string;
  readonly tag: string;
  /** `sha256:...` of the multi-arch index; used where the stack pins by digest (prod). */
  readonly digest?: string;
}

/** `repo:tag`, or `repo:tag@digest` when pinning by digest. */
export function imageRef(image: ImageVersion, byDigest: boolean): string {
  return byDigest && image.digest
    ? `${image.repository}:${image.tag}@${image.digest}`
    : `${image.repository}:${image.tag}`;
}

export const K3S_VERSION = "v1.32.5+k3s1";

export const charts = {
  certManager: { chart: "cert-manager", version: "v1.18.2", repo: "https://charts.jetstack.io" },
} as const satisfies Record<string, ChartVersion>;

export const images = {
  /** CNCF Distribution, the in-cluster registry (multi-arch index digest). */
  registry: {
    repository: "docker.io/library/registry",
    tag: "3.0.0",
    digest: "sha256:6c5666b861f3505b116bb9aa9b25175e71210414bd010d92035ff64018f9457e",
  },
} as const satisfies Record<string, ImageVersion>;
