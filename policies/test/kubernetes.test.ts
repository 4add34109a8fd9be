import { describe, expect, it } from "vitest";
import {
  deployment,
  goodContainer,
  goodPodSpec,
  LONG_RUNNING,
  workload,
  WORKLOAD_KINDS,
  type Kind,
} from "./fixtures";
import { policyNamed, validate } from "./helper";
import { validatePackConfig } from "../lib/config";
import { containersOf, podSpecsOf } from "../lib/k8s";
import { checkPodSecurity, POD_SECURITY_CONTROLS } from "../lib/pss";
import type { Obj } from "../lib/values";
import { policies } from "../rules";
import { DEFAULT_MESH_INIT_CONTAINERS, meshInitAllowance } from "../rules/kubernetes";

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
  const POD_PATH: Record<Kind, string> = {
    Pod: "spec",
    Deployment: "spec.template.spec",
    StatefulSet: "spec.template.spec",
    DaemonSet: "spec.template.spec",
    ReplicaSet: "spec.template.spec",
    Job: "spec.template.spec",
    CronJob: "spec.jobTemplate.spec.template.spec",
  };
  /** The field path each violation starts with. */
  const paths = (violations: readonly string[]) => violations.map((v) => v.slice(0, v.indexOf(": ")));

  it.each(WORKLOAD_KINDS)("passes a restricted %s", async (kind) => {
    expect((await validate(P, workload(kind, goodPodSpec()))).violations).toEqual([]);
  });

  it.each(WORKLOAD_KINDS)("reports each failed control of a %s once, at its field path", async (kind) => {
    const spec = {
      hostNetwork: true,
      hostPID: true,
      securityContext: { sysctls: [{ name: "kernel.core_pattern", value: "|/bin/sh" }] },
      volumes: [
        { name: "root", hostPath: { path: "/" } },
        { name: "tmp", emptyDir: {} },
      ],
      containers: [
        {
          name: "app",
          image: "x:1",
          ports: [{ containerPort: 80, hostPort: 80 }],
          securityContext: {
            privileged: true,
            runAsUser: 0,
            procMount: "Unmasked",
            capabilities: { add: ["SYS_ADMIN"] },
            seLinuxOptions: { type: "spc_t" },
            appArmorProfile: { type: "Unconfined" },
            windowsOptions: { hostProcess: true },
          },
        },
      ],
    };
    const podMeta = { annotations: { "container.apparmor.security.beta.kubernetes.io/app": "unconfined" } };
    const r = await validate(P, workload(kind, spec, { podMeta }));
    const at = POD_PATH[kind];
    const meta = at.replace(/\.?spec$/, "");
    const app = `${at}.containers[0]`;
    expect(paths(r.violations)).toEqual([
      `${app}.securityContext.windowsOptions.hostProcess`,
      `${at}.hostNetwork`,
      `${at}.hostPID`,
      `${app}.securityContext.privileged`,
      `${app}.ports[0].hostPort`,
      `${app}.securityContext.appArmorProfile.type`,
      `${meta ? `${meta}.` : ""}metadata.annotations["container.apparmor.security.beta.kubernetes.io/app"]`,
      `${app}.securityContext.seLinuxOptions.type`,
      `${at}.securityContext.sysctls[0].name`,
      `${at}.volumes[0].hostPath`,
      `${app}.securityContext.allowPrivilegeEscalation`,
      `${app}.securityContext.runAsNonRoot`,
      `${app}.securityContext.runAsUser`,
      `${app}.securityContext.seccompProfile.type`,
      `${app}.securityContext.capabilities.drop`,
      `${app}.securityContext.capabilities.add`,
      `${app}.securityContext.procMount`,
    ]);
    expect(r.violations[3]).toBe(
      `${app}.securityContext.privileged: container app must not set securityContext.privileged=true (Pod Security baseline control "Privileged Containers")`,
    );
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

  it("checks init and ephemeral containers, naming them and what to set", async () => {
    const spec = goodPodSpec({
      initContainers: [{ name: "chown", image: "busybox:1", securityContext: { runAsUser: 0 } }],
      ephemeralContainers: [
        {
          name: "debug",
          image: "busybox:1",
          securityContext: {
            allowPrivilegeEscalation: false,
            capabilities: { drop: ["ALL"] },
            procMount: "Unmasked",
          },
        },
      ],
    });
    expect((await validate(P, deployment(spec))).violations).toEqual([
      'spec.template.spec.initContainers[0].securityContext.allowPrivilegeEscalation: init container chown must set securityContext.allowPrivilegeEscalation=false (Pod Security restricted control "Privilege Escalation")',
      'spec.template.spec.initContainers[0].securityContext.runAsUser: init container chown must not set securityContext.runAsUser=0 (use a non-zero uid) (Pod Security restricted control "Running as Non-root user")',
      'spec.template.spec.initContainers[0].securityContext.capabilities.drop: init container chown must set securityContext.capabilities.drop=["ALL"] (Pod Security restricted control "Capabilities")',
      'spec.template.spec.ephemeralContainers[0].securityContext.procMount: ephemeral container debug must not set securityContext.procMount to "Unmasked" (Default or unset) (Pod Security restricted control "/proc Mount Type")',
    ]);
  });

  it("reports volume types restricted does not allow, and allows image volumes", async () => {
    const spec = goodPodSpec({
      volumes: [
        { name: "weights", image: { reference: "registry.local/weights:1" } },
        { name: "share", nfs: { server: "nas", path: "/models" } },
      ],
    });
    expect(paths((await validate(P, deployment(spec))).violations)).toEqual([
      "spec.template.spec.volumes[1].nfs",
    ]);
  });

  it("does not judge settings unknown during preview", async () => {
    const r = await validate(
      P,
      deployment(goodPodSpec({ initContainers: [goodContainer({ name: "init" })] })),
      {
        unknown: [
          ["spec", "template", "spec", "containers", 0, "securityContext"],
          ["spec", "template", "spec", "initContainers", 0, "securityContext", "allowPrivilegeEscalation"],
        ],
      },
    );
    expect(r).toMatchObject({ violations: [], previewNotes: [] });
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

  it("a container-narrowed exemption drops that container's findings, never the pod's", async () => {
    const spec = goodPodSpec({
      hostIPC: true,
      containers: [
        goodContainer(),
        goodContainer({ name: "vendor-agent", securityContext: { runAsUser: 0 } }),
        goodContainer({ name: "sidecar", securityContext: { capabilities: { drop: ["ALL"] } } }),
      ],
    });
    const config = {
      exemptions: [
        { name: "app", container: "vendor-*", reason: "the vendor's image needs uid 0; no setting" },
      ],
    };
    expect(paths((await validate(P, deployment(spec), { config })).violations)).toEqual([
      "spec.template.spec.hostIPC",
      "spec.template.spec.containers[2].securityContext.allowPrivilegeEscalation",
    ]);
  });

  it("still judges the mesh's injected proxy slot: the injector keeps its securityContext", async () => {
    const slot = goodContainer({ name: "istio-proxy", image: "auto", securityContext: { runAsUser: 0 } });
    const w = workload("Deployment", goodPodSpec({ containers: [goodContainer(), slot] }), {
      podMeta: { labels: { app: "gw", "sidecar.istio.io/inject": "true" } },
    });
    expect(paths((await validate(P, w)).violations)).toEqual([
      "spec.template.spec.containers[1].securityContext.allowPrivilegeEscalation",
      "spec.template.spec.containers[1].securityContext.runAsUser",
      "spec.template.spec.containers[1].securityContext.capabilities.drop",
    ]);
  });
});

describe("k8s-pod-security-restricted: the mesh's injected init containers", () => {
  const P = "k8s-pod-security-restricted";
  /** What Istio's injector writes without the CNI: iptables as root. */
  const istioInit = (sc: Obj = {}) => ({
    name: "istio-init",
    image: "docker.io/istio/proxyv2:1.28.0",
    args: ["istio-iptables", "-p", "15001"],
    securityContext: {
      allowPrivilegeEscalation: false,
      privileged: false,
      runAsGroup: 0,
      runAsNonRoot: false,
      runAsUser: 0,
      capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] },
      ...sc,
    },
  });
  /** Linkerd's proxy-init: root, NET_ADMIN/NET_RAW, nothing dropped. */
  const linkerdInit = {
    name: "linkerd-init",
    image: "cr.l5d.io/linkerd/proxy-init:v2.4.1",
    securityContext: {
      allowPrivilegeEscalation: false,
      privileged: false,
      runAsNonRoot: false,
      runAsUser: 0,
      capabilities: { add: ["NET_ADMIN", "NET_RAW"] },
    },
  };
  const proxy = (name: string) => goodContainer({ name, image: "docker.io/istio/proxyv2:1.28.0" });
  const meshed = (init: Obj, proxyName = "istio-proxy", over: Obj = {}) =>
    deployment(
      goodPodSpec({ containers: [goodContainer(), proxy(proxyName)], initContainers: [init], ...over }),
    );
  const paths = (violations: readonly string[]) => violations.map((v) => v.slice(0, v.indexOf(": ")));

  it("allows istio-init and linkerd-init the root and capabilities they need, by default", async () => {
    expect((await validate(P, meshed(istioInit()))).violations).toEqual([]);
    expect((await validate(P, meshed(linkerdInit, "linkerd-proxy"))).violations).toEqual([]);
  });

  it("lists the allowance, with its reason, as the policy's config default", () => {
    const schema = policyNamed(P).configSchema?.properties["meshInitContainers"] as { default?: unknown };
    expect(schema.default).toEqual(DEFAULT_MESH_INIT_CONTAINERS);
    const ids = POD_SECURITY_CONTROLS.map((c) => c.id);
    for (const m of DEFAULT_MESH_INIT_CONTAINERS)
      expect(ids).toEqual(expect.arrayContaining([...m.controls]));
    expect(DEFAULT_MESH_INIT_CONTAINERS.map((m) => [m.name, m.proxy, m.controls, m.capabilities])).toEqual([
      [
        "istio-init",
        "istio-proxy",
        ["capabilities_restricted", "runAsNonRoot", "runAsUser"],
        ["NET_ADMIN", "NET_RAW"],
      ],
      [
        "linkerd-init",
        "linkerd-proxy",
        ["capabilities_restricted", "runAsNonRoot", "runAsUser"],
        ["NET_ADMIN", "NET_RAW"],
      ],
    ]);
  });

  it("still reports every other control, and capabilities beyond the listed ones", async () => {
    const r = await validate(
      P,
      meshed(
        istioInit({
          privileged: true,
          seccompProfile: { type: "Unconfined" },
          capabilities: { add: ["NET_ADMIN", "SYS_ADMIN"], drop: ["ALL"] },
        }),
      ),
    );
    expect(paths(r.violations)).toEqual([
      "spec.template.spec.initContainers[0].securityContext.privileged",
      "spec.template.spec.initContainers[0].securityContext.seccompProfile.type",
      "spec.template.spec.initContainers[0].securityContext.capabilities.add",
    ]);
    expect(r.violations[2]).toContain('must not add "NET_ADMIN", "SYS_ADMIN"');
  });

  it("holds only for an init container of that name in a pod that runs the mesh's proxy", async () => {
    const initSc = "spec.template.spec.initContainers[0].securityContext";
    const rootFindings = [`${initSc}.runAsNonRoot`, `${initSc}.runAsUser`, `${initSc}.capabilities.add`];
    // No proxy beside it: nothing for the init container to redirect to.
    expect(paths((await validate(P, meshed(istioInit(), "envoy"))).violations)).toEqual(rootFindings);
    // The other mesh's proxy does not count.
    expect(paths((await validate(P, meshed(istioInit(), "linkerd-proxy"))).violations)).toEqual(rootFindings);
    // An app container or a native sidecar of that name is no injected init container.
    const asApp = deployment(
      goodPodSpec({ containers: [goodContainer(), proxy("istio-proxy"), istioInit()] }),
    );
    expect((await validate(P, asApp)).violations).toHaveLength(3);
    const sidecar = meshed({ ...istioInit(), restartPolicy: "Always" });
    expect(paths((await validate(P, sidecar)).violations)).toEqual(rootFindings);
  });

  it("judges istio-validation like any container: it needs nothing", async () => {
    const validation = goodContainer({ name: "istio-validation", securityContext: { runAsNonRoot: false } });
    expect(paths((await validate(P, meshed(validation))).violations)).toEqual([
      "spec.template.spec.initContainers[0].securityContext.allowPrivilegeEscalation",
      "spec.template.spec.initContainers[0].securityContext.runAsNonRoot",
      "spec.template.spec.initContainers[0].securityContext.capabilities.drop",
    ]);
  });

  it("is configuration: an empty list allows nothing", async () => {
    const r = await validate(P, meshed(istioInit()), { config: { meshInitContainers: [] } });
    expect(r.violations).toHaveLength(3);
  });

  it("refuses entries without a reason or with a control outside root and capabilities", () => {
    const problems = validatePackConfig(policies, {
      [P]: {
        meshInitContainers: [
          { name: "x-init", proxy: "x-proxy", controls: ["runAsUser"] },
          { name: "y-init", proxy: "y-proxy", controls: ["privileged"], reason: "wants everything" },
        ],
      },
    });
    expect(problems).toEqual([
      `${P}.meshInitContainers[0]: missing required "reason"`,
      `${P}.meshInitContainers[1].controls[0]: must be one of "capabilities_baseline", "capabilities_restricted", "runAsNonRoot", "runAsUser"`,
    ]);
  });
});

describe("meshInitAllowance", () => {
  const allowances = DEFAULT_MESH_INIT_CONTAINERS;
  const pod = {
    kind: "Pod" as const,
    path: ["spec"],
    metadata: {},
    spec: {
      containers: [{ name: "istio-proxy" }],
      initContainers: [
        {
          name: "istio-init",
          securityContext: { runAsUser: 0, capabilities: { drop: ["ALL"], add: ["NET_ADMIN", "SYS_TIME"] } },
        },
      ],
    },
  };
  const findings = checkPodSecurity(pod.spec, "restricted");
  const containers = containersOf(pod);
  const byField = (suffix: string) => findings.find((f) => f.field.endsWith(suffix))!;

  it("covers the listed controls of the named init container", () => {
    expect(meshInitAllowance(allowances, byField("securityContext.runAsUser"), containers)?.name).toBe(
      "istio-init",
    );
  });
  it("never covers a capability outside the entry's list, nor pod-level findings", () => {
    expect(meshInitAllowance(allowances, byField("capabilities.add"), containers)).toBeUndefined();
    const podLevel = checkPodSecurity({ ...pod.spec, hostPID: true }, "restricted").find(
      (f) => f.control === "hostNamespaces",
    )!;
    expect(meshInitAllowance(allowances, podLevel, containers)).toBeUndefined();
  });
  it("covers nothing without allowances", () => {
    expect(meshInitAllowance(undefined, byField("securityContext.runAsUser"), containers)).toBeUndefined();
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
