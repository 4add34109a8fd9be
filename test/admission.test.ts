import { describe, expect, it } from "vitest";
import {
  admissionFindings,
  checkPodSecurity,
  kubernetesMinor,
  namespaceLevels,
  namespacePolicy,
  podSpecs,
  safeSysctls,
  SERVER_MINOR,
  type PodSecurityLevel,
} from "../tools/preflight/admission";
import type { PlanObject } from "../tools/preflight/objects";
import { K3S_VERSION } from "../components/versions";

type Obj = Record<string, unknown>;

/** The object at `path` under `o`: fixtures have known shapes, so one cast keeps the edits terse. */
function at(o: Obj, ...path: (string | number)[]): Obj {
  let cur: unknown = o;
  for (const key of path) cur = (cur as Record<string | number, unknown>)[key];
  return cur as Obj;
}

function list(o: Obj, key: string): Obj[] {
  return o[key] as Obj[];
}

/** A pod that every level admits: the shape the platform's own workloads should have. */
function hardened(): Obj {
  return {
    securityContext: { runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: "RuntimeDefault" } },
    containers: [
      {
        name: "app",
        image: "registry.local/app:1",
        ports: [{ name: "http", containerPort: 8080 }],
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
        readinessProbe: { httpGet: { path: "/healthz", port: 8080 } },
      },
    ],
    initContainers: [
      {
        name: "init",
        image: "registry.local/init:1",
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
      },
    ],
    volumes: [
      { name: "config", configMap: { name: "app" } },
      { name: "tmp", emptyDir: {} },
      { name: "token", projected: { sources: [] } },
      { name: "creds", secret: { secretName: "app" } },
      { name: "data", persistentVolumeClaim: { claimName: "data" } },
      { name: "model", image: { reference: "registry.local/model:1" } },
    ],
  };
}

/** The hardened pod with `edit` applied to a deep copy. */
function pod(edit: (spec: Obj) => void): Obj {
  const spec = structuredClone(hardened());
  edit(spec);
  return spec;
}

const app = (spec: Obj): Obj => at(spec, "containers", 0);
const appSc = (spec: Obj): Obj => at(app(spec), "securityContext");
const podSc = (spec: Obj): Obj => at(spec, "securityContext");
const initSc = (spec: Obj): Obj => at(spec, "initContainers", 0, "securityContext");

function controls(spec: Obj, level: PodSecurityLevel, metadata?: Obj, version?: number) {
  return checkPodSecurity(spec, level, metadata, version === undefined ? {} : { version }).map((v) => [
    v.control,
    v.field,
  ]);
}

describe("checkPodSecurity: the hardened pod", () => {
  it("passes every level", () => {
    for (const level of ["privileged", "baseline", "restricted"] as const) {
      expect(checkPodSecurity(hardened(), level)).toEqual([]);
    }
  });
});

interface Case {
  readonly name: string;
  readonly edit: (spec: Obj) => void;
  readonly metadata?: Obj;
  readonly control: string;
  readonly field: string;
  readonly version?: number;
}

const BASELINE_CASES: readonly Case[] = [
  {
    name: "windowsHostProcess at the pod",
    edit: (s) => (podSc(s)["windowsOptions"] = { hostProcess: true }),
    control: "windowsHostProcess",
    field: "securityContext.windowsOptions.hostProcess",
  },
  {
    name: "windowsHostProcess on a container",
    edit: (s) => (appSc(s)["windowsOptions"] = { hostProcess: true }),
    control: "windowsHostProcess",
    field: "containers[app].securityContext.windowsOptions.hostProcess",
  },
  {
    name: "hostNetwork",
    edit: (s) => (s["hostNetwork"] = true),
    control: "hostNamespaces",
    field: "hostNetwork",
  },
  { name: "hostPID", edit: (s) => (s["hostPID"] = true), control: "hostNamespaces", field: "hostPID" },
  { name: "hostIPC", edit: (s) => (s["hostIPC"] = true), control: "hostNamespaces", field: "hostIPC" },
  {
    name: "privileged",
    edit: (s) => (appSc(s)["privileged"] = true),
    control: "privileged",
    field: "containers[app].securityContext.privileged",
  },
  {
    name: "a capability beyond the default set",
    edit: (s) => (at(appSc(s), "capabilities")["add"] = ["NET_ADMIN"]),
    control: "capabilities_baseline",
    field: "containers[app].securityContext.capabilities.add",
  },
  {
    name: "a hostPath volume",
    edit: (s) => list(s, "volumes").push({ name: "host", hostPath: { path: "/var/run" } }),
    control: "hostPathVolumes",
    field: "volumes[host].hostPath",
  },
  {
    name: "a hostPort",
    edit: (s) => (at(app(s), "ports", 0)["hostPort"] = 8080),
    control: "hostPorts",
    field: "containers[app].ports[http].hostPort",
  },
  {
    name: "an unconfined AppArmor profile at the pod",
    edit: (s) => (podSc(s)["appArmorProfile"] = { type: "Unconfined" }),
    control: "appArmorProfile",
    field: "securityContext.appArmorProfile.type",
  },
  {
    name: "an unconfined AppArmor profile on an init container",
    edit: (s) => (initSc(s)["appArmorProfile"] = { type: "Unconfined" }),
    control: "appArmorProfile",
    field: "initContainers[init].securityContext.appArmorProfile.type",
  },
  {
    name: "an unconfined AppArmor annotation",
    edit: () => undefined,
    metadata: { annotations: { "container.apparmor.security.beta.kubernetes.io/app": "unconfined" } },
    control: "appArmorProfile",
    field: "metadata.annotations[container.apparmor.security.beta.kubernetes.io/app]",
  },
  {
    name: "a custom SELinux type",
    edit: (s) => (podSc(s)["seLinuxOptions"] = { type: "spc_t" }),
    control: "seLinuxOptions",
    field: "securityContext.seLinuxOptions.type",
  },
  {
    name: "an SELinux user",
    edit: (s) => (appSc(s)["seLinuxOptions"] = { user: "system_u" }),
    control: "seLinuxOptions",
    field: "containers[app].securityContext.seLinuxOptions.user",
  },
  {
    name: "an SELinux role",
    edit: (s) => (appSc(s)["seLinuxOptions"] = { role: "system_r" }),
    control: "seLinuxOptions",
    field: "containers[app].securityContext.seLinuxOptions.role",
  },
  {
    name: "an unmasked /proc",
    edit: (s) => (appSc(s)["procMount"] = "Unmasked"),
    control: "procMount",
    field: "containers[app].securityContext.procMount",
  },
  {
    name: "an unconfined seccomp profile",
    edit: (s) => (appSc(s)["seccompProfile"] = { type: "Unconfined" }),
    control: "seccompProfile_baseline",
    field: "containers[app].securityContext.seccompProfile.type",
  },
  {
    name: "an unsafe sysctl",
    edit: (s) => (podSc(s)["sysctls"] = [{ name: "kernel.msgmax", value: "65536" }]),
    control: "sysctls",
    field: "securityContext.sysctls[kernel.msgmax]",
  },
  {
    name: "a probe aimed at another host",
    edit: (s) => (at(app(s), "readinessProbe", "httpGet")["host"] = "169.254.169.254"),
    control: "hostProbesAndHostLifecycle",
    field: "containers[app].readinessProbe.httpGet.host",
    version: 34,
  },
  {
    name: "a lifecycle hook aimed at another host",
    edit: (s) => (app(s)["lifecycle"] = { preStop: { tcpSocket: { host: "10.0.0.1", port: 22 } } }),
    control: "hostProbesAndHostLifecycle",
    field: "containers[app].lifecycle.preStop.tcpSocket.host",
    version: 34,
  },
];

describe("checkPodSecurity: baseline controls", () => {
  it.each(BASELINE_CASES)("$name is rejected by baseline", (c) => {
    expect(controls(pod(c.edit), "baseline", c.metadata, c.version)).toEqual([[c.control, c.field]]);
  });

  it("privileged admits every one of them", () => {
    for (const c of BASELINE_CASES) {
      expect(checkPodSecurity(pod(c.edit), "privileged", c.metadata, { version: 37 })).toEqual([]);
    }
  });

  it("restricted rejects them too, through its stricter replacement where it has one", () => {
    const replaced: Record<string, string> = {
      capabilities_baseline: "capabilities_restricted",
      hostPathVolumes: "restrictedVolumes",
      seccompProfile_baseline: "seccompProfile_restricted",
    };
    for (const c of BASELINE_CASES) {
      const got = checkPodSecurity(pod(c.edit), "restricted", c.metadata, { version: c.version ?? 32 });
      expect(got.map((v) => v.control)).toEqual([replaced[c.control] ?? c.control]);
    }
  });

  it("allows the runtime's default capabilities, confined AppArmor and the container SELinux types", () => {
    const spec = pod((s) => {
      at(appSc(s), "capabilities")["add"] = ["CHOWN", "NET_BIND_SERVICE", "SYS_CHROOT"];
      appSc(s)["appArmorProfile"] = { type: "Localhost", localhostProfile: "k8s-app" };
      podSc(s)["seLinuxOptions"] = { type: "container_init_t", level: "s0:c1,c2" };
      appSc(s)["procMount"] = "Default";
      appSc(s)["seccompProfile"] = { type: "Localhost", localhostProfile: "app.json" };
    });
    const metadata = {
      annotations: {
        "container.apparmor.security.beta.kubernetes.io/app": "localhost/k8s-app",
        "container.apparmor.security.beta.kubernetes.io/init": "runtime/default",
      },
    };
    expect(checkPodSecurity(spec, "baseline", metadata)).toEqual([]);
  });

  it("container_engine_t is allowed from 1.31 only", () => {
    const spec = pod((s) => (appSc(s)["seLinuxOptions"] = { type: "container_engine_t" }));
    expect(controls(spec, "baseline", undefined, 30)).toEqual([
      ["seLinuxOptions", "containers[app].securityContext.seLinuxOptions.type"],
    ]);
    expect(checkPodSecurity(spec, "baseline", undefined, { version: 31 })).toEqual([]);
  });

  it("the safe sysctls grow with the version", () => {
    const withSysctl = (name: string) => pod((s) => (podSc(s)["sysctls"] = [{ name, value: "1" }]));
    expect(checkPodSecurity(withSysctl("net.ipv4.tcp_rmem"), "baseline", undefined, { version: 32 })).toEqual(
      [],
    );
    expect(controls(withSysctl("net.ipv4.tcp_rmem"), "baseline", undefined, 31)).toHaveLength(1);
    expect(
      checkPodSecurity(withSysctl("net.ipv4.tcp_keepalive_time"), "baseline", undefined, { version: 29 }),
    ).toEqual([]);
    expect(
      checkPodSecurity(withSysctl("net.ipv4.ip_local_reserved_ports"), "baseline", undefined, {
        version: 27,
      }),
    ).toEqual([]);
    expect(controls(withSysctl("net.ipv4.tcp_notsent_lowat"), "baseline", undefined, 32)).toHaveLength(1);
    expect(safeSysctls(37).has("net.ipv4.tcp_slow_start_after_idle")).toBe(true);
  });

  it("probe and hook hosts are not checked before 1.34", () => {
    const spec = pod((s) => (app(s)["livenessProbe"] = { tcpSocket: { host: "10.0.0.1", port: 80 } }));
    expect(checkPodSecurity(spec, "baseline", undefined, { version: 33 })).toEqual([]);
    expect(controls(spec, "baseline", undefined, 34)).toEqual([
      ["hostProbesAndHostLifecycle", "containers[app].livenessProbe.tcpSocket.host"],
    ]);
  });

  it("a user-namespaced pod may change /proc under baseline from 1.35, never under restricted", () => {
    const spec = pod((s) => {
      s["hostUsers"] = false;
      appSc(s)["procMount"] = "Unmasked";
    });
    expect(checkPodSecurity(spec, "baseline", undefined, { version: 35 })).toEqual([]);
    expect(controls(spec, "baseline", undefined, 34)).toEqual([
      ["procMount", "containers[app].securityContext.procMount"],
    ]);
    expect(controls(spec, "restricted", undefined, 35)).toEqual([
      ["procMount_restricted", "containers[app].securityContext.procMount"],
    ]);
  });
});

const RESTRICTED_CASES: readonly Case[] = [
  {
    name: "an NFS volume",
    edit: (s) => list(s, "volumes").push({ name: "shared", nfs: { server: "nfs", path: "/" } }),
    control: "restrictedVolumes",
    field: "volumes[shared].nfs",
  },
  {
    name: "privilege escalation left unset",
    edit: (s) => delete appSc(s)["allowPrivilegeEscalation"],
    control: "allowPrivilegeEscalation",
    field: "containers[app].securityContext.allowPrivilegeEscalation",
  },
  {
    name: "privilege escalation allowed on an init container",
    edit: (s) => (initSc(s)["allowPrivilegeEscalation"] = true),
    control: "allowPrivilegeEscalation",
    field: "initContainers[init].securityContext.allowPrivilegeEscalation",
  },
  {
    name: "runAsNonRoot=false on a container despite the pod",
    edit: (s) => (appSc(s)["runAsNonRoot"] = false),
    control: "runAsNonRoot",
    field: "containers[app].securityContext.runAsNonRoot",
  },
  {
    name: "runAsUser=0 at the pod",
    edit: (s) => (podSc(s)["runAsUser"] = 0),
    control: "runAsUser",
    field: "securityContext.runAsUser",
  },
  {
    name: "runAsUser=0 on a container",
    edit: (s) => (appSc(s)["runAsUser"] = 0),
    control: "runAsUser",
    field: "containers[app].securityContext.runAsUser",
  },
  {
    name: "capabilities not dropped",
    edit: (s) => delete appSc(s)["capabilities"],
    control: "capabilities_restricted",
    field: "containers[app].securityContext.capabilities.drop",
  },
  {
    name: "a default capability added",
    edit: (s) => (at(appSc(s), "capabilities")["add"] = ["CHOWN"]),
    control: "capabilities_restricted",
    field: "containers[app].securityContext.capabilities.add",
  },
];

describe("checkPodSecurity: restricted controls", () => {
  it.each(RESTRICTED_CASES)("$name is rejected by restricted and admitted by baseline", (c) => {
    expect(controls(pod(c.edit), "restricted")).toEqual([[c.control, c.field]]);
    expect(checkPodSecurity(pod(c.edit), "baseline")).toEqual([]);
  });

  it("runAsNonRoot must be true at the pod or on every container", () => {
    const spec = pod((s) => {
      delete podSc(s)["runAsNonRoot"];
      appSc(s)["runAsNonRoot"] = true;
    });
    expect(controls(spec, "restricted")).toEqual([
      ["runAsNonRoot", "initContainers[init].securityContext.runAsNonRoot"],
    ]);
    expect(checkPodSecurity(spec, "restricted")[0]?.message).toBe(
      "init container init must set securityContext.runAsNonRoot=true (or the pod must)",
    );
    initSc(spec)["runAsNonRoot"] = true;
    expect(checkPodSecurity(spec, "restricted")).toEqual([]);
  });

  it("runAsNonRoot=false at the pod is refused even when every container sets true", () => {
    const spec = pod((s) => {
      podSc(s)["runAsNonRoot"] = false;
      appSc(s)["runAsNonRoot"] = true;
      initSc(s)["runAsNonRoot"] = true;
    });
    expect(controls(spec, "restricted")).toEqual([["runAsNonRoot", "securityContext.runAsNonRoot"]]);
  });

  it("seccomp must be confined at the pod or on every container", () => {
    const spec = pod((s) => {
      delete podSc(s)["seccompProfile"];
      appSc(s)["seccompProfile"] = { type: "RuntimeDefault" };
    });
    expect(controls(spec, "restricted")).toEqual([
      ["seccompProfile_restricted", "initContainers[init].securityContext.seccompProfile.type"],
    ]);
    expect(checkPodSecurity(spec, "baseline")).toEqual([]);
    initSc(spec)["seccompProfile"] = {
      type: "Localhost",
      localhostProfile: "x",
    };
    expect(checkPodSecurity(spec, "restricted")).toEqual([]);
  });

  it("a volume without a source is the emptyDir the API server defaults it to", () => {
    const spec = pod((s) => list(s, "volumes").push({ name: "scratch" }));
    expect(checkPodSecurity(spec, "restricted")).toEqual([]);
  });

  it("NET_BIND_SERVICE may be added back after dropping ALL", () => {
    const spec = pod((s) => (appSc(s)["capabilities"] = { drop: ["ALL"], add: ["NET_BIND_SERVICE"] }));
    expect(checkPodSecurity(spec, "restricted")).toEqual([]);
  });

  it("ephemeral containers are checked and named", () => {
    const spec = pod((s) => (s["ephemeralContainers"] = [{ name: "debug", image: "busybox" }]));
    expect(controls(spec, "restricted")).toEqual([
      ["allowPrivilegeEscalation", "ephemeralContainers[debug].securityContext.allowPrivilegeEscalation"],
      ["capabilities_restricted", "ephemeralContainers[debug].securityContext.capabilities.drop"],
    ]);
  });

  it("Windows pods skip the Linux-only controls from 1.25", () => {
    const spec = pod((s) => {
      s["os"] = { name: "windows" };
      delete podSc(s)["seccompProfile"];
      delete appSc(s)["allowPrivilegeEscalation"];
      delete appSc(s)["capabilities"];
    });
    expect(checkPodSecurity(spec, "restricted", undefined, { version: 25 })).toEqual([]);
    expect(controls(spec, "restricted", undefined, 24).map(([c]) => c)).toEqual([
      "allowPrivilegeEscalation",
      "seccompProfile_restricted",
      "seccompProfile_restricted",
      "capabilities_restricted",
    ]);
  });

  it("user-namespaced pods may run as uid 0 from 1.35, not before", () => {
    const spec = pod((s) => {
      s["hostUsers"] = false;
      podSc(s)["runAsNonRoot"] = false;
      podSc(s)["runAsUser"] = 0;
    });
    expect(checkPodSecurity(spec, "restricted", undefined, { version: 35 })).toEqual([]);
    expect(controls(spec, "restricted", undefined, 32).map(([c]) => c)).toEqual(
      expect.arrayContaining(["runAsNonRoot", "runAsUser"]),
    );
  });

  it("names what would be right", () => {
    const [v] = checkPodSecurity(
      pod((s) => delete appSc(s)["allowPrivilegeEscalation"]),
      "restricted",
    );
    expect(v?.message).toBe("container app must set securityContext.allowPrivilegeEscalation=false");
  });
});

describe("checkPodSecurity: levels", () => {
  /** No securityContext at all: what most chart defaults look like. */
  const plain = { containers: [{ name: "app", image: "nginx" }] };
  /** Everything baseline forbids at once. */
  const hostile: Obj = {
    hostNetwork: true,
    hostPID: true,
    securityContext: { runAsUser: 0, sysctls: [{ name: "kernel.core_pattern", value: "|/x" }] },
    containers: [
      {
        name: "root",
        image: "x",
        ports: [{ containerPort: 1, hostPort: 1 }],
        securityContext: { privileged: true, capabilities: { add: ["SYS_ADMIN"] }, procMount: "Unmasked" },
      },
    ],
    volumes: [{ name: "root", hostPath: { path: "/" } }],
  };

  it("privileged admits everything", () => {
    expect(checkPodSecurity(hostile, "privileged")).toEqual([]);
  });

  it("baseline admits a plain pod that restricted rejects", () => {
    expect(checkPodSecurity(plain, "baseline")).toEqual([]);
    expect(controls(plain, "restricted")).toEqual([
      ["allowPrivilegeEscalation", "containers[app].securityContext.allowPrivilegeEscalation"],
      ["runAsNonRoot", "containers[app].securityContext.runAsNonRoot"],
      ["seccompProfile_restricted", "containers[app].securityContext.seccompProfile.type"],
      ["capabilities_restricted", "containers[app].securityContext.capabilities.drop"],
    ]);
  });

  it("baseline reports every control the hostile pod breaks", () => {
    expect(new Set(controls(hostile, "baseline").map(([c]) => c))).toEqual(
      new Set([
        "hostNamespaces",
        "privileged",
        "capabilities_baseline",
        "hostPathVolumes",
        "hostPorts",
        "procMount",
        "sysctls",
      ]),
    );
    expect(controls(hostile, "baseline")).toContainEqual(["hostPorts", "containers[root].ports[0].hostPort"]);
  });
});

// ---------------------------------------------------------------------------------------------

function plan(
  object: Obj,
  urn = `urn:${String(object["kind"])}:${String(at(object, "metadata")["name"])}`,
): PlanObject {
  const [group] = String(object["apiVersion"]).split("/");
  return {
    urn,
    type: `kubernetes:${group === "v1" ? "core/v1" : String(object["apiVersion"])}:${String(object["kind"])}`,
    name: String(at(object, "metadata")["name"]),
    dependsOn: [],
    rendered: false,
    object,
  };
}

function namespace(name: string, level?: string, version?: string): PlanObject {
  const labels: Obj = {};
  if (level !== undefined) labels["pod-security.kubernetes.io/enforce"] = level;
  if (version !== undefined) labels["pod-security.kubernetes.io/enforce-version"] = version;
  return plan({ apiVersion: "v1", kind: "Namespace", metadata: { name, labels } });
}

function statefulSet(ns: string | undefined, spec: Obj, templateMetadata: Obj = {}): PlanObject {
  return plan({
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: { name: "nats", ...(ns ? { namespace: ns } : {}) },
    spec: { template: { metadata: templateMetadata, spec } },
  });
}

const exporterWithoutApe = pod((s) => {
  list(s, "containers").push({
    name: "prom-exporter",
    image: "natsio/prometheus-nats-exporter",
    securityContext: { capabilities: { drop: ["ALL"] } },
  });
});

describe("podSpecs", () => {
  it("finds the template of every workload kind with its path", () => {
    const spec = hardened();
    const template = { metadata: { labels: { a: "b" } }, spec };
    expect(podSpecs({ apiVersion: "v1", kind: "Pod", metadata: { name: "p" }, spec })).toEqual([
      { path: "spec", spec, metadata: { name: "p" } },
    ]);
    for (const [apiVersion, kind] of [
      ["apps/v1", "Deployment"],
      ["apps/v1", "StatefulSet"],
      ["apps/v1", "DaemonSet"],
      ["apps/v1", "ReplicaSet"],
      ["v1", "ReplicationController"],
      ["batch/v1", "Job"],
    ]) {
      expect(podSpecs({ apiVersion, kind, spec: { template } })).toEqual([
        { path: "spec.template.spec", spec, metadata: template.metadata },
      ]);
    }
    expect(
      podSpecs({ apiVersion: "batch/v1", kind: "CronJob", spec: { jobTemplate: { spec: { template } } } }),
    ).toEqual([{ path: "spec.jobTemplate.spec.template.spec", spec, metadata: template.metadata }]);
    expect(podSpecs({ apiVersion: "v1", kind: "ConfigMap", data: {} })).toEqual([]);
  });
});

describe("namespaceLevels", () => {
  it("reads the enforce label, defaults to privileged and adds the cluster's namespaces", () => {
    const levels = namespaceLevels([
      namespace("inference", "restricted"),
      namespace("gpu", "baseline"),
      namespace("scratch"),
    ]);
    expect(Object.fromEntries(levels)).toEqual({
      inference: "restricted",
      gpu: "baseline",
      scratch: "privileged",
      default: "privileged",
      "kube-system": "privileged",
      "kube-public": "privileged",
      "kube-node-lease": "privileged",
    });
  });

  it("lets the plan relabel a cluster namespace and fails closed on a bad level", () => {
    const levels = namespaceLevels([namespace("default", "baseline"), namespace("odd", "strict")]);
    expect(levels.get("default")).toBe("baseline");
    expect(levels.get("odd")).toBe("restricted");
  });

  it("resolves enforce-version against the server", () => {
    expect(namespacePolicy({ "pod-security.kubernetes.io/enforce": "baseline" }, 32)).toEqual({
      level: "baseline",
      version: 32,
    });
    const pinned = (v: string) =>
      namespacePolicy(
        { "pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/enforce-version": v },
        32,
      ).version;
    expect(pinned("latest")).toBe(32);
    expect(pinned("v1.30")).toBe(30);
    expect(pinned("v1.40")).toBe(32);
    expect(pinned("nonsense")).toBe(32);
    expect(kubernetesMinor("v1.32.5+k3s1")).toBe(32);
    expect(SERVER_MINOR).toBe(kubernetesMinor(K3S_VERSION));
  });
});

describe("admissionFindings", () => {
  it("reports a StatefulSet's pods at its namespace's level, naming object, namespace, control and field", () => {
    const findings = admissionFindings([
      namespace("inference", "restricted"),
      statefulSet("inference", exporterWithoutApe),
    ]);
    expect(findings).toEqual([
      {
        check: "admission",
        severity: "error",
        urn: "urn:StatefulSet:nats",
        field: "spec.template.spec.containers[prom-exporter].securityContext.allowPrivilegeEscalation",
        message:
          "StatefulSet inference/nats would have its pods rejected by Pod Security 'restricted' (namespace inference, control allowPrivilegeEscalation): container prom-exporter must set securityContext.allowPrivilegeEscalation=false",
      },
    ]);
  });

  it("the same template passes a baseline namespace and a cluster namespace", () => {
    expect(admissionFindings([namespace("gpu", "baseline"), statefulSet("gpu", exporterWithoutApe)])).toEqual(
      [],
    );
    expect(admissionFindings([statefulSet("kube-system", exporterWithoutApe)])).toEqual([]);
  });

  it("a workload without a namespace lands in default, privileged unless the plan labels it", () => {
    expect(admissionFindings([statefulSet(undefined, exporterWithoutApe)])).toEqual([]);
    const findings = admissionFindings([
      namespace("default", "restricted"),
      statefulSet(undefined, exporterWithoutApe),
    ]);
    expect(findings.map((f) => f.message)).toEqual([
      expect.stringContaining(
        "StatefulSet nats would have its pods rejected by Pod Security 'restricted' (namespace default",
      ),
    ]);
  });

  it("skips namespaces the plan does not create and the cluster does not have", () => {
    expect(admissionFindings([statefulSet("nowhere", exporterWithoutApe)])).toEqual([]);
  });

  it("a Deployment's annotations are paths in its template", () => {
    const d = plan({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "gateway", namespace: "edge" },
      spec: {
        template: {
          metadata: { annotations: { "container.apparmor.security.beta.kubernetes.io/app": "unconfined" } },
          spec: pod((s) => (at(app(s), "ports", 0)["hostPort"] = 443)),
        },
      },
    });
    const findings = admissionFindings([namespace("edge", "baseline"), d]);
    expect(findings.map((f) => f.field)).toEqual([
      "spec.template.spec.containers[app].ports[http].hostPort",
      "spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/app]",
    ]);
    expect(findings[0]?.message).toContain(
      "Deployment edge/gateway would have its pods rejected by Pod Security 'baseline'",
    );
  });

  it("a CronJob's pod spec is under its job template", () => {
    const cj = plan({
      apiVersion: "batch/v1",
      kind: "CronJob",
      metadata: { name: "compact", namespace: "data" },
      spec: {
        schedule: "@daily",
        jobTemplate: { spec: { template: { spec: pod((s) => (podSc(s)["runAsUser"] = 0)) } } },
      },
    });
    expect(admissionFindings([namespace("data", "restricted"), cj]).map((f) => f.field)).toEqual([
      "spec.jobTemplate.spec.template.spec.securityContext.runAsUser",
    ]);
  });

  it("a bare Pod is rejected itself; its annotations are in its own metadata", () => {
    const p = plan({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: "debug",
        namespace: "ops",
        annotations: { "container.apparmor.security.beta.kubernetes.io/app": "unconfined" },
      },
      spec: hardened(),
    });
    const [f] = admissionFindings([namespace("ops", "baseline"), p]);
    expect(f?.field).toBe("metadata.annotations[container.apparmor.security.beta.kubernetes.io/app]");
    expect(f?.message).toMatch(
      /^Pod ops\/debug would be rejected by Pod Security 'baseline' \(namespace ops/,
    );
  });

  it("uses the pack's controls but not its allowances: a mesh's istio-init is still refused", () => {
    const meshed = pod((s) => {
      list(s, "containers").push({
        name: "istio-proxy",
        image: "proxyv2",
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
      });
      list(s, "initContainers").push({
        name: "istio-init",
        image: "proxyv2",
        securityContext: {
          allowPrivilegeEscalation: false,
          runAsNonRoot: false,
          runAsUser: 0,
          capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] },
        },
      });
    });
    const findings = admissionFindings([namespace("apps", "restricted"), statefulSet("apps", meshed)]);
    expect(findings.map((f) => f.field)).toEqual([
      "spec.template.spec.initContainers[istio-init].securityContext.runAsNonRoot",
      "spec.template.spec.initContainers[istio-init].securityContext.runAsUser",
      "spec.template.spec.initContainers[istio-init].securityContext.capabilities.add",
    ]);
    expect(admissionFindings([namespace("apps", "baseline"), statefulSet("apps", meshed)])).toHaveLength(1);
  });

  it("honours a pinned enforce-version: a v1.33 namespace does not check probe hosts", () => {
    const withHost = pod((s) => (at(app(s), "readinessProbe", "httpGet")["host"] = "example.com"));
    expect(
      admissionFindings([namespace("a", "baseline", "v1.33"), statefulSet("a", withHost)], {
        serverVersion: 37,
      }),
    ).toEqual([]);
    expect(
      admissionFindings([namespace("a", "baseline"), statefulSet("a", withHost)], { serverVersion: 37 }).map(
        (f) => f.field,
      ),
    ).toEqual(["spec.template.spec.containers[app].readinessProbe.httpGet.host"]);
  });
});
