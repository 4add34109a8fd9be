/**
 * Every policy of the pack, as one array. Importing this module has no side effects (unlike
 * `policies/index.ts`, whose PolicyPack constructor starts the analyzer server).
 */
import type { Policies } from "@pulumi/policy";
import { buildPolicies } from "./builds";
import { dockerfilePolicies } from "./dockerfile";
import { gpuPolicies } from "./gpu";
import { imagePolicies } from "./images";
import { kubernetesPolicies } from "./kubernetes";
import { meshPolicies } from "./mesh";
import { secretPolicies } from "./secrets";
import { stackPolicies } from "./stack";

export const policies: Policies = [
  ...secretPolicies,
  ...imagePolicies,
  ...buildPolicies,
  ...dockerfilePolicies,
  ...kubernetesPolicies,
  ...gpuPolicies,
  ...meshPolicies,
  ...stackPolicies,
];

/** Policy names in table order. */
export const policyNames: readonly string[] = policies.map((p) => p.name);
