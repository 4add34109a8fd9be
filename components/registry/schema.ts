import { z } from "zod";
import type { MeshConfig } from "../mesh/schema";
import {
  dnsLabel,
  doc,
  formatKey,
  hostname,
  quantity,
  reservedNamespaceProblems,
  type ConfigProblem,
  type KeyPath,
} from "../schema-kit";
import { issuerChoice } from "../tls/schema";

/** An OCI image tag; `latest` is refused because deployments must be reproducible. */
export const imageTag = z
  .string()
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, "must be an image tag such as 1.4.2 or git-3f2c1ab")
  .refine((t) => t.toLowerCase() !== "latest", "must not be latest; use a version or a git SHA");

const platformName = z
  .string()
  .regex(/^linux\/(amd64|arm64|arm\/v7)$/, "must be a linux platform such as linux/amd64");

/** How the platform builds its own service images. */
export const imagesSchema = z.strictObject({
  platform: doc(
    z.union([platformName, z.array(platformName).min(1)]).default("linux/amd64"),
    "Platform(s) images are built for (the cluster's node architectures; several make a multi-platform index).",
    ["linux/amd64", "linux/arm64"],
  ),
  tag: doc(
    imageTag.optional(),
    "Tag for built images (a label: images rebuild when their context changes and deploy by digest); default: the service's package.json version.",
    "git-3f2c1ab",
  ),
  cacheFrom: doc(
    z.boolean().default(true),
    "Use and refresh a registry build cache (`<repository>:buildcache`, --cache-from/--cache-to).",
    true,
  ),
});
export type ImagesConfig = z.infer<typeof imagesSchema>;

export const registrySchema = z.strictObject({
  enabled: doc(z.boolean().default(true), "Run or use a private registry for the platform's images.", true),
  mode: doc(
    z.enum(["in-cluster", "external"]).default("in-cluster"),
    "in-cluster (CNCF Distribution) or external.",
    "in-cluster",
  ),
  namespace: doc(dnsLabel.default("registry"), "Namespace of the in-cluster registry.", "registry"),
  hostname: doc(
    hostname.default("registry.platform.local"),
    "Hostname the registry is served under (TLS).",
    "registry.edge.example.org",
  ),
  storageSize: doc(quantity.default("20Gi"), "Size of the registry's volume.", "50Gi"),
  tls: doc(
    z.strictObject({ issuer: issuerChoice.default("self-signed") }).default({ issuer: "self-signed" }),
    "Issuer of the registry's certificate: self-signed (local only: CI's Docker and the nodes do not trust the in-cluster CA) or acme (publicly trusted, platform:tls.acme).",
    { issuer: "acme" },
  ),
  external: doc(
    z.strictObject({ server: hostname, username: z.string().min(1) }).optional(),
    "External registry (GHCR, ECR, ...): server and user; the password is the platform:registryPassword secret.",
    { server: "ghcr.io", username: "platform-bot" },
  ),
  images: imagesSchema.default(imagesSchema.parse({})),
});
export type RegistryConfig = z.infer<typeof registrySchema>;

/** What the registry checks read of the other sections. */
export interface RegistryInputs {
  readonly registry: RegistryConfig;
  readonly mesh: Pick<MeshConfig, "enabled" | "ingressHostname">;
  /** Namespaces other sections create (the registry's must differ from each). */
  readonly namespaces: readonly { readonly key: KeyPath; readonly namespace: string }[];
}

/** Checks of `platform:registry`: its mode's settings, its hostname and its namespace. */
export function registryChecks(c: RegistryInputs): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const reg = c.registry;
  if (!reg.enabled) return out;
  if (reg.mode === "external" && !reg.external)
    out.push({
      key: formatKey(["registry", "external"]),
      message: "external mode needs the external server and username",
      example: '{"server":"ghcr.io","username":"platform-bot"}',
    });
  if (reg.mode !== "in-cluster") return out;
  if (reg.external)
    out.push({
      key: formatKey(["registry", "external"]),
      message: 'is only used in external mode; set platform:registry.mode to "external" or remove it',
    });
  if (c.mesh.enabled && reg.hostname === c.mesh.ingressHostname)
    out.push({
      key: formatKey(["registry", "hostname"]),
      message: `must differ from platform:mesh.ingressHostname (${c.mesh.ingressHostname}): the registry terminates its own TLS behind the gateway (SNI passthrough)`,
      example: '"registry.example.org"',
    });
  out.push(...reservedNamespaceProblems(["registry", "namespace"], reg.namespace));
  for (const other of c.namespaces)
    if (other.namespace === reg.namespace)
      out.push({
        key: formatKey(["registry", "namespace"]),
        message: `must differ from ${formatKey(other.key)} ("${other.namespace}")`,
        example: '"registry"',
      });
  return out;
}
