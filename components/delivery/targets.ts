/**
 * Small pure decisions of the delivery components, beside the schema so config checks and
 * components agree on them.
 */
import type { VercelConfig, VercelTarget } from "./schema";

/** Vercel targets a stack's gateway serves: production for prod, preview otherwise, unless configured. */
export function vercelTargets(environment: string, vercel: Pick<VercelConfig, "targets">): VercelTarget[] {
  return vercel.targets ?? [environment === "prod" ? "production" : "preview"];
}
