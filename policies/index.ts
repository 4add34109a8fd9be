/**
 * The CrossGuard policy pack. This file only builds the PolicyPack (whose constructor starts the
 * analyzer server): rules live in `rules/`, importable without side effects.
 *
 *   pulumi preview --policy-pack policies --policy-pack-config policies/config/<stack>.json
 */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./rules";

new PolicyPack("ai-delivery-platform", {
  description:
    "No plaintext secrets, slim pinned images, and Kubernetes, GPU, mesh and prod guardrails for the AI delivery platform.",
  enforcementLevel: "advisory",
  policies,
});
