import { z } from "zod";
import { dnsLabel, doc, hostname, quantity } from "../schema-kit";
import { issuerChoice } from "../tls/schema";

/** An OCI image tag; `latest` is refused because deployments must be reproducible. */
export const imageTag = z
  .string()
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, "must be an image tag such as 1.4.2 or git-3f2c1ab")
  .refine((t) => t.toLowerCase() !== "latest", "must not be latest; use a version or a git SHA");

/** How the platform builds its own service images. */
export const imagesSchema = z.strictObject({
  platform: doc(
    z
      .string()
      .regex(/^linux\/(amd64|arm64|arm\/v7)$/, "must be a linux platform such as linux/amd64")
      .default("linux/amd64"),
    "Platform images are built for (the cluster's node architecture).",
    "linux/arm64",
  ),
  tag: doc(
    imageTag.optional(),
    "Tag for built images; defaults to the service's package.json version. CI sets a git SHA.",
    "git-3f2c1ab",
  ),
  cacheFrom: doc(
    z.boolean().default(true),
    "Use the previously pushed image as build cache (--cache-from).",
    true,
  ),
  buildOnPreview: doc(
    z.boolean().default(false),
    "Build images during `pulumi preview` too (slow; off so previews stay fast and offline).",
    false,
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
