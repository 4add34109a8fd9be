/** Builders for test resources: compliant pod specs in every workload kind, and variations. */
import type { TestResource } from "./helper";
import type { Obj } from "../lib/values";

export const DIGEST = `sha256:${"a".repeat(64)}`;
export const GOOD_IMAGE = `ghcr.io/acme/app:1.2.3@${DIGEST}`;

export function goodContainer(over: Obj = {}): Obj {
  return {
    name: "app",
    image: GOOD_IMAGE,
    resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "256Mi" } },
    readinessProbe: { httpGet: { path: "/ready", port: 8080 } },
    livenessProbe: { httpGet: { path: "/live", port: 8080 } },
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    ...over,
  };
}

export function goodPodSpec(over: Obj = {}): Obj {
  return {
    securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
    containers: [goodContainer()],
    ...over,
  };
}

export function gpuPodSpec(over: Obj = {}, gpus = 1): Obj {
  return goodPodSpec({
    runtimeClassName: "nvidia",
    tolerations: [{ key: "nvidia.com/gpu", operator: "Equal", value: "present", effect: "NoSchedule" }],
    containers: [
      goodContainer({
        resources: {
          requests: { cpu: "1", memory: "8Gi", "nvidia.com/gpu": String(gpus) },
          limits: { memory: "16Gi", "nvidia.com/gpu": String(gpus) },
        },
      }),
    ],
    ...over,
  });
}

export const WORKLOAD_KINDS = [
  "Pod",
  "Deployment",
  "StatefulSet",
  "DaemonSet",
  "ReplicaSet",
  "Job",
  "CronJob",
] as const;
export type Kind = (typeof WORKLOAD_KINDS)[number];
export const LONG_RUNNING: readonly Kind[] = ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"];

const TYPES: Record<Kind, string> = {
  Pod: "kubernetes:core/v1:Pod",
  Deployment: "kubernetes:apps/v1:Deployment",
  StatefulSet: "kubernetes:apps/v1:StatefulSet",
  DaemonSet: "kubernetes:apps/v1:DaemonSet",
  ReplicaSet: "kubernetes:apps/v1:ReplicaSet",
  Job: "kubernetes:batch/v1:Job",
  CronJob: "kubernetes:batch/v1:CronJob",
};

/** A workload of `kind` around `podSpec` (pod template labels/annotations from `podMeta`). */
export function workload(
  kind: Kind,
  podSpec: Obj,
  opts: { namespace?: string; name?: string; podMeta?: Obj; spec?: Obj } = {},
): TestResource {
  const metadata = { name: opts.name ?? "app", namespace: opts.namespace ?? "apps" };
  const template = { metadata: { labels: { app: "app" }, ...(opts.podMeta ?? {}) }, spec: podSpec };
  let spec: Obj;
  switch (kind) {
    case "Pod":
      return {
        type: TYPES.Pod,
        name: metadata.name,
        props: { metadata: { ...metadata, ...(opts.podMeta ?? {}) }, spec: podSpec },
      };
    case "CronJob":
      spec = { schedule: "0 * * * *", jobTemplate: { spec: { template } }, ...(opts.spec ?? {}) };
      break;
    case "Job":
      spec = { template, ...(opts.spec ?? {}) };
      break;
    default:
      spec = { selector: { matchLabels: { app: "app" } }, template, ...(opts.spec ?? {}) };
  }
  return { type: TYPES[kind], name: metadata.name, props: { metadata, spec } };
}

export const deployment = (podSpec: Obj = goodPodSpec(), opts: Parameters<typeof workload>[2] = {}) =>
  workload("Deployment", podSpec, opts);

export const helmChart = (values: Obj, chart = "grafana", over: Obj = {}): TestResource => ({
  type: "kubernetes:helm.sh/v4:Chart",
  name: chart,
  props: {
    chart,
    version: "8.5.0",
    namespace: "monitoring",
    repositoryOpts: { repo: "https://charts.example" },
    values,
    ...over,
  },
});

/** Realistic-looking credentials, assembled so they are not literals in the source tree. */
export const FAKE = {
  githubToken: ["ghp", "_", "wWPw5k4aXcaT4fNP0UcnZwJUVFk6LO0pINUx"].join(""),
  slackToken: ["xoxb", "-123456789012-1234567890123-", "abcdefghijABCDEFGHIJabcd"].join(""),
  jwt: [
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ",
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
  ].join("."),
  privateKey: [
    "-----BEGIN ",
    "RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA ",
    "PRIVATE KEY-----",
  ].join(""),
  password: "Xk9#mQ2$vL7pWz4!",
  dbUrl: ["postgres://app:", "Xk9mQ2vL7pWz4", "@db.internal:5432/app"].join(""),
};
