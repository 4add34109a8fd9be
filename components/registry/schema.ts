import { z } from "zod";
import { doc, hostname, quantity } from "../schema-kit";

export const registrySchema = z.strictObject({
  enabled: doc(z.boolean().default(true), "Run or use a private registry for the platform's images.", true),
  mode: doc(
    z.enum(["in-cluster", "external"]).default("in-cluster"),
    "in-cluster (CNCF Distribution) or external.",
    "in-cluster",
  ),
  hostname: doc(
    hostname.default("registry.platform.local"),
    "Hostname the registry is served under (TLS).",
    "registry.edge.example.org",
  ),
  storageSize: doc(quantity.default("20Gi"), "Size of the registry's volume.", "50Gi"),
  tls: doc(
    z
      .strictObject({
        issuer: z.enum(["self-signed", "acme"]).default("self-signed"),
        acmeEmail: z.email().optional(),
        acmeServer: z.url().default("https://acme-v02.api.letsencrypt.org/directory"),
      })
      .default({ issuer: "self-signed", acmeServer: "https://acme-v02.api.letsencrypt.org/directory" }),
    "Certificate issuer: a self-signed CA, or ACME (needs acmeEmail).",
    { issuer: "acme", acmeEmail: "platform@example.org" },
  ),
  external: doc(
    z.strictObject({ server: hostname, username: z.string().min(1) }).optional(),
    "External registry (GHCR, ECR, ...): server and user; the password is the platform:registryPassword secret.",
    { server: "ghcr.io", username: "platform-bot" },
  ),
});
export type RegistryConfig = z.infer<typeof registrySchema>;
