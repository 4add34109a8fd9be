import { z } from "zod";
import { doc, formatKey, type ConfigProblem } from "../schema-kit";

export const externalSecretsSchema = z.strictObject({
  enabled: doc(z.boolean().default(false), "Install the External Secrets Operator.", true),
  provider: doc(
    z.enum(["vault", "aws", "gcp", "azure"]).default("vault"),
    "Backend of the ClusterSecretStore.",
    "vault",
  ),
  server: doc(
    z.url().optional(),
    "Vault address (vault) or Key Vault URL (azure).",
    "https://vault.example.org",
  ),
  region: doc(z.string().min(1).optional(), "AWS region of Secrets Manager (aws).", "eu-west-1"),
  projectId: doc(z.string().min(1).optional(), "GCP project of Secret Manager (gcp).", "acme-prod"),
  vaultPath: doc(z.string().min(1).default("secret"), "Vault KV v2 mount (vault).", "secret"),
  vaultRole: doc(
    z.string().min(1).default("external-secrets"),
    "Vault Kubernetes-auth role the operator logs in with (vault).",
    "external-secrets",
  ),
  storeName: doc(
    z.string().min(1).default("platform"),
    "Name of the ClusterSecretStore that ExternalSecrets reference.",
    "platform",
  ),
});

export const secretsSchema = z.strictObject({
  externalSecrets: doc(
    externalSecretsSchema.default(externalSecretsSchema.parse({})),
    "Optional External Secrets Operator with a ClusterSecretStore.",
    { enabled: true, provider: "vault", server: "https://vault.example.org" },
  ),
});
export type SecretsConfig = z.infer<typeof secretsSchema>;
export type ExternalSecretsConfig = z.infer<typeof externalSecretsSchema>;

/** What each provider needs beyond `provider` (secretsChecks turns each into a config problem). */
export function externalSecretsProblems(
  c: ExternalSecretsConfig,
): { field: "server" | "region" | "projectId"; message: string; example: string }[] {
  if (!c.enabled) return [];
  switch (c.provider) {
    case "vault":
      return c.server
        ? []
        : [
            {
              field: "server",
              message: "the vault provider needs the Vault address",
              example: '"https://vault.example.org"',
            },
          ];
    case "azure":
      return c.server
        ? []
        : [
            {
              field: "server",
              message: "the azure provider needs the Key Vault URL",
              example: '"https://acme.vault.azure.net"',
            },
          ];
    case "aws":
      return c.region
        ? []
        : [{ field: "region", message: "the aws provider needs a region", example: '"eu-west-1"' }];
    case "gcp":
      return c.projectId
        ? []
        : [{ field: "projectId", message: "the gcp provider needs a project id", example: '"acme-prod"' }];
  }
}

/** Checks of `platform:secrets`. */
export function secretsChecks(c: { readonly secrets: SecretsConfig }): ConfigProblem[] {
  return externalSecretsProblems(c.secrets.externalSecrets).map((p) => ({
    key: formatKey(["secrets", "externalSecrets", p.field]),
    message: p.message,
    example: p.example,
  }));
}
