import { z } from "zod";
import { doc } from "../schema-kit";

export const secretsSchema = z.strictObject({
  externalSecrets: doc(
    z
      .strictObject({
        enabled: z.boolean().default(false),
        provider: z.enum(["vault", "aws", "gcp", "azure"]).default("vault"),
        server: z.url().optional(),
      })
      .default({ enabled: false, provider: "vault" }),
    "Optional External Secrets Operator with a ClusterSecretStore.",
    { enabled: true, provider: "vault", server: "https://vault.example.org" },
  ),
});
export type SecretsConfig = z.infer<typeof secretsSchema>;
