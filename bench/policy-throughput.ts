/**
 * Policy throughput: the whole pack over the prod stack's resources replicated to about 10,000,
 * against a structuredClone of the same inputs (the cost of merely touching them once).
 */
import { runPolicies, type ResourceRecord } from "../policies/lib/runner";
import { policies } from "../policies/rules";
import { readFileSync } from "node:fs";
import type { PolicyPackConfig } from "@pulumi/policy";
import { policyRecords, runStack } from "../tools/preflight/run";

export interface PolicyBenchResult {
  resources: number;
  packUsPerResource: number;
  cloneUsPerResource: number;
  ratio: number;
  violations: number;
}

export async function benchPolicies(target = 10_000): Promise<PolicyBenchResult> {
  const result = await runStack("prod", { dir: process.cwd() });
  if (result.kind !== "plan") throw new Error("prod config rejected");
  const base: ResourceRecord[] = policyRecords(result.registrations);
  const copies = Math.max(1, Math.round(target / base.length));
  const records: ResourceRecord[] = [];
  for (let c = 0; c < copies; c++)
    for (const r of base)
      records.push({ ...r, urn: `${r.urn}-${c}`, name: `${r.name}-${c}`, inputs: structuredClone(r.inputs) });
  const config = JSON.parse(readFileSync("policies/config/prod.json", "utf8")) as PolicyPackConfig;

  await runPolicies(policies, records.slice(0, base.length), { config }); // warm-up
  const packRuns: number[] = [];
  const cloneRuns: number[] = [];
  let violations = 0;
  for (let i = 0; i < 3; i++) {
    let t = performance.now();
    violations = (await runPolicies(policies, records, { config })).length;
    packRuns.push(performance.now() - t);
    t = performance.now();
    for (const r of records) structuredClone(r.inputs);
    cloneRuns.push(performance.now() - t);
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[1]!;
  const pack = (med(packRuns) * 1000) / records.length;
  const clone = (med(cloneRuns) * 1000) / records.length;
  return {
    resources: records.length,
    packUsPerResource: Number(pack.toFixed(2)),
    cloneUsPerResource: Number(clone.toFixed(2)),
    ratio: Number((pack / clone).toFixed(2)),
    violations,
  };
}
