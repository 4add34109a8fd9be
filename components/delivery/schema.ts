import { z } from "zod";
import { doc, hostname } from "../schema-kit";

const ghName = z
  .string()
  .regex(/^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$/, "must be a GitHub owner or repository name");

export const deliverySchema = z.strictObject({
  github: doc(
    z
      .strictObject({
        enabled: z.boolean().default(false),
        owner: ghName.optional(),
        repository: ghName.optional(),
        reviewers: z.array(ghName).default([]),
      })
      .default({ enabled: false, reviewers: [] }),
    "GitHub repository settings, rulesets, environments and Actions secrets (token: platform:githubToken).",
    { enabled: true, owner: "acme", repository: "ai-platform", reviewers: ["alice"] },
  ),
  vercel: doc(
    z
      .strictObject({
        enabled: z.boolean().default(false),
        project: z.string().min(1).optional(),
        team: z.string().min(1).optional(),
        domain: hostname.optional(),
      })
      .default({ enabled: false }),
    "Vercel front end with preview/production variables (token: platform:vercelApiToken).",
    { enabled: true, project: "ai-platform-web", domain: "app.example.org" },
  ),
});
export type DeliveryConfig = z.infer<typeof deliverySchema>;
