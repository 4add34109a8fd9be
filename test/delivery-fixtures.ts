/** Parsed delivery config sections for component tests (defaults applied by the real schema). */
import { deliverySchema, type GithubConfig, type VercelConfig } from "../components/delivery/schema";

export function githubConfig(overrides: Record<string, unknown> = {}): GithubConfig {
  return deliverySchema.parse({
    github: { enabled: true, owner: "acme", repository: "ai-platform", ...overrides },
  }).github;
}

export function vercelConfig(overrides: Record<string, unknown> = {}): VercelConfig {
  return deliverySchema.parse({ vercel: { enabled: true, project: "ai-platform-web", ...overrides } }).vercel;
}
