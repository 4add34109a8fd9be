/**
 * Every policy of the pack, as one array. Importing this module has no side effects (unlike
 * `policies/index.ts`, whose PolicyPack constructor starts the analyzer server).
 */
import type { Policies } from "@pulumi/policy";

export const policies: Policies = [];
