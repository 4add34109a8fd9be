/**
 * Small zod building blocks shared by every section of the stack-config schema, so each module's
 * schema reads the same way and reports problems with the same words and examples.
 */
import { isIP } from "node:net";
import { z } from "zod";

/** Attaches a description and an example (shown when a value is wrong) to a schema. */
export function doc<T extends z.ZodType>(schema: T, description: string, example: unknown): T {
  return schema.meta({ description, example });
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** An RFC 1123 label: what Kubernetes accepts as a name (pools, services, namespaces). */
export const dnsLabel = z
  .string()
  .max(63, "must be at most 63 characters")
  .regex(
    DNS_LABEL,
    "must be a DNS label: lower-case letters, digits and '-', starting and ending alphanumeric",
  );

/** A DNS hostname (lower case). */
export const hostname = z.string().regex(HOSTNAME, "must be a DNS hostname such as gpu-01.edge.example.org");

/** An IPv4/IPv6 address or a DNS hostname: how SSH reaches a host. */
export const hostAddress = z
  .string()
  .refine(
    (v) => isIP(v) !== 0 || HOSTNAME.test(v),
    "must be an IP address or a DNS hostname such as 10.0.0.11 or edge-1.example.org",
  );

/** A Kubernetes resource quantity such as 20Gi, 500m or 2. */
export const quantity = z
  .string()
  .regex(
    /^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$/,
    "must be a Kubernetes quantity such as 20Gi, 512Mi, 500m or 2",
  );

/** A Prometheus duration such as 15d or 12h. */
export const duration = z
  .string()
  .regex(/^[0-9]+(ms|s|m|h|d|w|y)$/, "must be a duration such as 30s, 12h or 15d");

/** A Kubernetes label map. */
export const labels = z.record(
  z.string().regex(/^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/, "must be a label key"),
  z.string().regex(/^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/, "must be a label value (max 63 chars)"),
);

/** A node taint. */
export const taint = z.strictObject({
  key: z.string().min(1),
  value: z.string().optional(),
  effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]),
});

/** Names that repeat in a list, for "must be unique" checks. */
export function duplicates<T>(items: readonly T[], key: (item: T) => string): Map<string, number[]> {
  const seen = new Map<string, number[]>();
  items.forEach((item, i) => seen.set(key(item), [...(seen.get(key(item)) ?? []), i]));
  return new Map([...seen].filter(([, idx]) => idx.length > 1));
}
