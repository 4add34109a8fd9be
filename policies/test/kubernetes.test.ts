import { describe, expect, it } from "vitest";
import { deployment, goodContainer, goodPodSpec, LONG_RUNNING, workload, WORKLOAD_KINDS } from "./fixtures";
import { validate } from "./helper";
import { containersOf, podSpecsOf } from "../lib/k8s";

describe("podSpecsOf / containersOf", () => {
  it.each(WORKLOAD_KINDS)("finds the pod spec of a %s", (kind) => {
    const w = workload(kind, goodPodSpec({ initContainers: [goodContainer({ name: "init" })] }));
    const pods = podSpecsOf(w.type, w.props);
    expect(pods).toHaveLength(1);
    expect(containersOf(pods[0]!).map((c) => c.name)).toEqual(["app", "init"]);
  });
  it("reads CustomResource-wrapped and CLI-typed workloads", () => {
    const cr = { apiVersion: "apps/v1", kind: "Deployment", spec: { template: { spec: goodPodSpec() } } };
    expect(podSpecsOf("kubernetes:apiextensions.k8s.io:CustomResource", cr)).toHaveLength(1);
    expect(podSpecsOf("kubernetes:core/v1:ConfigMap", { data: {} })).toEqual([]);
    expect(podSpecsOf("aws:s3/bucket:Bucket", {})).toEqual([]);
  });
});

describe("k8s-resources-required", () => {
  const P = "k8s-resources-required";
  it.each(WORKLOAD_KINDS)("passes a compliant %s", async (kind) => {
    expect((await validate(P, workload(kind, goodPodSpec()))).violations).toEqual([]);
  });
  it.each(WORKLOAD_KINDS)("flags missing requests and memory limit in a %s", async (kind) => {
    const spec = goodPodSpec({
      containers: [goodContainer({ resources: { requests: { cpu: "100m" } } })],
      initContainers: [goodContainer({ name: "init", resources: undefined })],
    });
    const r = await validate(P, workload(kind, spec));
    expect(r.violations).toEqual([
      'container "app" is missing resources requests.memory, limits.memory',
      'initContainer "init" is missing resources requests.cpu, requests.memory, limits.memory',
    ]);
  });
  it("skips resources unknown during preview", async () => {
    const r = await validate(P, deployment(), {
      unknown: [["spec", "template", "spec", "containers", 0, "resources"]],
    });
    expect(r).toMatchObject({ violations: [], previewNotes: [] });
  });
  it("honours exemptions with a reason", async () => {
    const spec = goodPodSpec({ containers: [goodContainer({ resources: {} })] });
    const r = await validate(P, deployment(spec, { namespace: "sandbox" }), {
      config: { exemptions: [{ namespace: "sandbox", reason: "throwaway experiments" }] },
    });
    expect(r.notApplicable).toContain("throwaway experiments");
  });
});

describe("k8s-probes-required", () => {
  const P = "k8s-probes-required";
  const noProbes = goodPodSpec({
    containers: [goodContainer({ readinessProbe: undefined, livenessProbe: undefined })],
  });
  it.each(LONG_RUNNING)("flags a %s without probes", async (kind) => {
    const r = await validate(P, workload(kind, noProbes));
    expect(r.violations).toEqual([
      'container "app" has no readinessProbe and no livenessProbe (or startupProbe)',
    ]);
  });
  it.each(["Job", "CronJob"] as const)("does not require probes on a %s", async (kind) => {
    expect((await validate(P, workload(kind, noProbes))).violations).toEqual([]);
  });
  it("accepts a startupProbe instead of liveness", async () => {
    const spec = goodPodSpec({
      containers: [goodContainer({ livenessProbe: undefined, startupProbe: { tcpSocket: { port: 8080 } } })],
    });
    expect((await validate(P, deployment(spec))).violations).toEqual([]);
  });
  it("does not require probes on run-to-completion Pods", async () => {
    expect((await validate(P, workload("Pod", { ...noProbes, restartPolicy: "Never" }))).violations).toEqual(
      [],
    );
  });
  it("can require readiness only", async () => {
    const spec = goodPodSpec({ containers: [goodContainer({ livenessProbe: undefined })] });
    expect((await validate(P, deployment(spec))).violations).toHaveLength(1);
    expect((await validate(P, deployment(spec), { config: { requireLiveness: false } })).violations).toEqual(
      [],
    );
  });
});

describe("container-narrowed exemptions", () => {
  const spec = goodPodSpec({
    containers: [
      goodContainer({ readinessProbe: undefined }),
      goodContainer({ name: "reloader", readinessProbe: undefined, livenessProbe: undefined, resources: {} }),
    ],
  });
  const reloader = {
    exemptions: [{ name: "app", container: "reload*", reason: "signals the server; serves nothing" }],
  };
  it("exempt only the named container, from the rule that lists them", async () => {
    const probes = await validate("k8s-probes-required", deployment(spec), { config: reloader });
    expect(probes.violations).toEqual(['container "app" has no readinessProbe']);
    // Another rule without the exemption still judges the exempted container.
    const resources = await validate("k8s-resources-required", deployment(spec));
    expect(resources.violations).toEqual([
      'container "reloader" is missing resources requests.cpu, requests.memory, limits.memory',
    ]);
  });
  it("never exempt a whole resource", async () => {
    const r = await validate("k8s-resources-required", deployment(spec), {
      config: { exemptions: [{ name: "app", container: "app", reason: "the app sizes itself" }] },
    });
    expect(r.violations).toHaveLength(1);
  });
});

describe("the mesh's injected proxy slot", () => {
  // Istio's gateway chart renders this container; the injector sets its image and probes.
  const slot = { name: "istio-proxy", image: "auto", readinessProbe: undefined, livenessProbe: undefined };
  const podMeta = (inject: boolean) => ({
    labels: { app: "gw", ...(inject ? { "sidecar.istio.io/inject": "true" } : {}) },
  });
  it("is judged neither for its probes nor its image when the pod is marked for injection", async () => {
    const w = workload("Deployment", goodPodSpec({ containers: [goodContainer(slot)] }), {
      podMeta: podMeta(true),
    });
    expect((await validate("k8s-probes-required", w)).violations).toEqual([]);
    expect((await validate("image-tag-pinned", w)).violations).toEqual([]);
  });
  it("is an ordinary container without the injection mark", async () => {
    const w = workload("Deployment", goodPodSpec({ containers: [goodContainer(slot)] }), {
      podMeta: podMeta(false),
    });
    expect((await validate("k8s-probes-required", w)).violations).toHaveLength(1);
    expect((await validate("image-tag-pinned", w)).violations).toEqual([
      'container "istio-proxy": image auto has no tag (resolves to :latest)',
    ]);
  });
});

describe("k8s-pod-security-restricted", () => {
  const P = "k8s-pod-security-restricted";
  it.each(WORKLOAD_KINDS)("passes a restricted %s", async (kind) => {
    expect((await validate(P, workload(kind, goodPodSpec()))).violations).toEqual([]);
  });
  it.each(WORKLOAD_KINDS)("flags every restricted-profile breach in a %s", async (kind) => {
    const spec = {
      hostNetwork: true,
      hostPID: true,
      volumes: [
        { name: "root", hostPath: { path: "/" } },
        { name: "tmp", emptyDir: {} },
      ],
      containers: [
        {
          name: "app",
          image: "x:1",
          ports: [{ containerPort: 80, hostPort: 80 }],
          securityContext: { privileged: true, runAsUser: 0, capabilities: { add: ["SYS_ADMIN"] } },
        },
      ],
    };
    const r = await validate(P, workload(kind, spec));
    expect(r.violations).toHaveLength(2);
    const all = r.violations.join("\n");
    for (const s of [
      "hostNetwork",
      "hostPID",
      "hostPath",
      "privileged",
      "allowPrivilegeEscalation",
      "runAsNonRoot",
      "runAsUser: 0",
      "drop lacks ALL",
      "SYS_ADMIN",
      "seccompProfile",
      "hostPort 80",
    ]) {
      expect(all).toContain(s);
    }
  });
  it("accepts pod-level runAsNonRoot/seccomp and NET_BIND_SERVICE", async () => {
    const spec = goodPodSpec({
      containers: [
        goodContainer({
          securityContext: {
            allowPrivilegeEscalation: false,
            capabilities: { drop: ["ALL"], add: ["NET_BIND_SERVICE"] },
          },
        }),
      ],
    });
    expect((await validate(P, deployment(spec))).violations).toEqual([]);
  });
  it("checks init and ephemeral containers", async () => {
    const spec = goodPodSpec({
      initContainers: [{ name: "chown", image: "busybox:1", securityContext: { runAsUser: 0 } }],
    });
    expect((await validate(P, deployment(spec))).violations).toEqual([
      expect.stringContaining('initContainer "chown"'),
    ]);
  });
  it("exempts namespaces listed in config", async () => {
    const spec = {
      hostNetwork: true,
      containers: [
        { name: "driver", image: "nvcr.io/nvidia/driver:550", securityContext: { privileged: true } },
      ],
    };
    const w = workload("DaemonSet", spec, { namespace: "gpu-operator" });
    expect((await validate(P, w)).violations).not.toEqual([]);
    const r = await validate(P, w, {
      config: { exemptions: [{ namespace: "gpu-operator", reason: "driver needs the host" }] },
    });
    expect(r).toMatchObject({ violations: [], notApplicable: "exempt: driver needs the host" });
  });
});

describe("k8s-readonly-root-fs", () => {
  const P = "k8s-readonly-root-fs";
  it.each(WORKLOAD_KINDS)("passes a read-only %s", async (kind) => {
    expect((await validate(P, workload(kind, goodPodSpec()))).violations).toEqual([]);
  });
  it.each(WORKLOAD_KINDS)("flags a writable root filesystem in a %s", async (kind) => {
    const spec = goodPodSpec({
      containers: [
        goodContainer({ securityContext: { readOnlyRootFilesystem: false } }),
        goodContainer({ name: "b", securityContext: undefined }),
      ],
    });
    expect((await validate(P, workload(kind, spec))).violations).toEqual([
      'container "app" has a writable root filesystem',
      'container "b" has a writable root filesystem',
    ]);
  });
});
