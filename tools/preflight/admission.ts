/**
 * Pod Security admission, simulated offline. The policy pack judges the plan against the
 * platform's own rules (with its exemptions); this module answers a narrower question: would the
 * API server's built-in PodSecurity admission let these pods run, given the level each namespace
 * enforces? The controls follow the upstream pod-security-admission checks (k8s.io/pod-security-admission,
 * `policy/check_*.go`), including the version each one starts at, because `latest` means the
 * newest checks the *running* API server knows, not the newest ever written.
 *
 * Enforcement applies to Pods. A Deployment, StatefulSet, Job... is admitted whatever its template
 * says (only `warn`/`audit` look at templates); its controller's pods are then refused, so the
 * workload never runs. Either way a violation is an error here.
 */
import { containersOf, podSpecsOf, type ContainerKind, type ContainerRef } from "../../policies/lib/k8s";
import { arr, obj, str, type Obj } from "../../policies/lib/values";
import { K3S_VERSION } from "../../components/versions";
import { describe, identity, type Finding, type PlanObject } from "./objects";

export type PodSecurityLevel = "privileged" | "baseline" | "restricted";

/** One control a pod fails, with the field (relative to the pod spec, or `metadata.` for annotations). */
export interface PodSecurityViolation {
  /** Upstream check id (`allowPrivilegeEscalation`, `seccompProfile_restricted`, ...). */
  readonly control: string;
  readonly field: string;
  /** What is wrong and what would be right, naming the pod or container. */
  readonly message: string;
}

/** The Kubernetes minor of a version string (`v1.32.5+k3s1` → 32). */
export function kubernetesMinor(version: string): number | undefined {
  const m = /^v?1\.(\d+)(?:\.|$|\+|-)/.exec(version);
  return m ? Number(m[1]) : undefined;
}

/** Newest minor whose checks this simulation knows (upstream's newest versioned check). */
export const NEWEST_CHECKS_MINOR = 37;

/**
 * The minor the platform's API server runs: what `enforce-version: latest` resolves to there.
 * A 1.32 server has never heard of the 1.34 probe-host check or the 1.37 sysctls.
 */
export const SERVER_MINOR = Math.min(
  kubernetesMinor(K3S_VERSION) ?? NEWEST_CHECKS_MINOR,
  NEWEST_CHECKS_MINOR,
);

export interface PodSecurityOptions {
  /** Kubernetes minor the policy is evaluated at (default: the platform's API server). */
  readonly version?: number;
}

// ---------------------------------------------------------------------------------------------
// Pod specs

/** A pod template inside a workload object, with its field path. */
export interface PodTemplate {
  /** Dotted path of the pod spec in the object (`spec.template.spec`). */
  readonly path: string;
  readonly spec: Record<string, unknown>;
  readonly metadata?: Record<string, unknown>;
}

/**
 * Pod spec(s) of Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job
 * and CronJob. Reuses the policy pack's walker; the object's own apiVersion/kind stand in for the
 * Pulumi type token since that is what the API server sees.
 */
export function podSpecs(o: Readonly<Record<string, unknown>>): PodTemplate[] {
  const { apiVersion, kind } = identity(o);
  if (!apiVersion || !kind) return [];
  return podSpecsOf(`kubernetes:${apiVersion}:${kind}`, o as Obj).map((p) => ({
    path: p.path.join("."),
    spec: p.spec,
    metadata: p.metadata,
  }));
}

// ---------------------------------------------------------------------------------------------
// The pod as the checks see it

interface Pod {
  readonly spec: Obj;
  readonly metadata: Obj;
  readonly containers: readonly ContainerRef[];
  readonly version: number;
  /** `spec.os.name: windows`: restricted's Linux-only controls skip such pods from 1.25. */
  readonly windows: boolean;
  /** `spec.hostUsers: false`: from 1.35 root inside a user namespace is not root on the node. */
  readonly userNamespace: boolean;
}

const CONTAINER_FIELD: Record<ContainerKind, string> = {
  container: "containers",
  initContainer: "initContainers",
  ephemeralContainer: "ephemeralContainers",
};

/** `containers[prom-exporter]`: containers are named, not indexed, so paths survive reordering. */
function containerPath(c: ContainerRef): string {
  return `${CONTAINER_FIELD[c.kind]}[${c.name}]`;
}

/** `container prom-exporter` / `init container wait` / `ephemeral container debug`. */
function containerLabel(c: ContainerRef): string {
  const word = {
    container: "container",
    initContainer: "init container",
    ephemeralContainer: "ephemeral container",
  };
  return `${word[c.kind]} ${c.name}`;
}

function securityContext(c: ContainerRef): Obj | undefined {
  return obj(c.container["securityContext"]);
}

function podSecurityContext(pod: Pod): Obj | undefined {
  return obj(pod.spec["securityContext"]);
}

/** Present in the JSON and not null: Go's "pointer is non-nil". */
function isSet(v: unknown): boolean {
  return v !== undefined && v !== null;
}

/** A string field that is absent, null or empty counts as unset, as Go's zero value would. */
function text(v: unknown): string {
  return typeof v === "string" ? v : isSet(v) ? String(v) : "";
}

function quoteList(values: readonly string[]): string {
  return values.map((v) => JSON.stringify(v)).join(", ");
}

/** A violation at the pod's securityContext and one per container whose own setting is bad. */
function podAndContainers(
  pod: Pod,
  control: string,
  subField: string,
  bad: (sc: Obj) => string | undefined,
): PodSecurityViolation[] {
  const out: PodSecurityViolation[] = [];
  const psc = podSecurityContext(pod);
  const podBad = psc ? bad(psc) : undefined;
  if (podBad !== undefined) {
    out.push({ control, field: `securityContext.${subField}`, message: `pod ${podBad}` });
  }
  for (const c of pod.containers) {
    const sc = securityContext(c);
    const why = sc ? bad(sc) : undefined;
    if (why !== undefined) {
      out.push({
        control,
        field: `${containerPath(c)}.securityContext.${subField}`,
        message: `${containerLabel(c)} ${why}`,
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Baseline controls

/** Windows HostProcess containers run as the node: nothing else in the policy matters then. */
function windowsHostProcess(pod: Pod): PodSecurityViolation[] {
  return podAndContainers(pod, "windowsHostProcess", "windowsOptions.hostProcess", (sc) =>
    obj(sc["windowsOptions"])?.["hostProcess"] === true
      ? "must not set securityContext.windowsOptions.hostProcess=true (or leave it unset)"
      : undefined,
  );
}

function hostNamespaces(pod: Pod): PodSecurityViolation[] {
  return ["hostNetwork", "hostPID", "hostIPC"]
    .filter((f) => pod.spec[f] === true)
    .map((f) => ({
      control: "hostNamespaces",
      field: f,
      message: `pod must not share the host's namespace: set ${f}=false (or leave it unset)`,
    }));
}

function privileged(pod: Pod): PodSecurityViolation[] {
  return pod.containers
    .filter((c) => securityContext(c)?.["privileged"] === true)
    .map((c) => ({
      control: "privileged",
      field: `${containerPath(c)}.securityContext.privileged`,
      message: `${containerLabel(c)} must not set securityContext.privileged=true`,
    }));
}

/** The container runtime's default capability set: adding any of these changes nothing. */
const BASELINE_CAPABILITIES: ReadonlySet<string> = new Set([
  "AUDIT_WRITE",
  "CHOWN",
  "DAC_OVERRIDE",
  "FOWNER",
  "FSETID",
  "KILL",
  "MKNOD",
  "NET_BIND_SERVICE",
  "SETFCAP",
  "SETGID",
  "SETPCAP",
  "SETUID",
  "SYS_CHROOT",
]);

function addedCapabilities(c: ContainerRef): string[] {
  return arr(obj(securityContext(c)?.["capabilities"])?.["add"]).map(text);
}

function capabilitiesBaseline(pod: Pod): PodSecurityViolation[] {
  return pod.containers.flatMap((c) => {
    const extra = addedCapabilities(c).filter((cap) => !BASELINE_CAPABILITIES.has(cap));
    return extra.length === 0
      ? []
      : [
          {
            control: "capabilities_baseline",
            field: `${containerPath(c)}.securityContext.capabilities.add`,
            message: `${containerLabel(c)} must not add ${quoteList(extra)} to securityContext.capabilities.add (only the runtime's default set is allowed)`,
          },
        ];
  });
}

function volumes(pod: Pod): Obj[] {
  return arr(pod.spec["volumes"]).flatMap((v): Obj[] => {
    const o = obj(v);
    return o ? [o] : [];
  });
}

function hostPathVolumes(pod: Pod): PodSecurityViolation[] {
  return volumes(pod)
    .filter((v) => isSet(v["hostPath"]))
    .map((v) => ({
      control: "hostPathVolumes",
      field: `volumes[${text(v["name"])}].hostPath`,
      message: `volume ${text(v["name"])} must not be a hostPath volume`,
    }));
}

function hostPorts(pod: Pod): PodSecurityViolation[] {
  return pod.containers.flatMap((c) =>
    arr(c.container["ports"]).flatMap((p, i) => {
      const port = obj(p);
      const hostPort = port?.["hostPort"];
      if (!isSet(hostPort) || hostPort === 0) return [];
      const key = str(port?.["name"]) ?? String(i);
      return [
        {
          control: "hostPorts",
          field: `${containerPath(c)}.ports[${key}].hostPort`,
          message: `${containerLabel(c)} must not use hostPort ${text(hostPort)} (leave it unset or 0)`,
        },
      ];
    }),
  );
}

const APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/";

function annotations(pod: Pod): [string, string][] {
  const a = obj(pod.metadata["annotations"]) ?? {};
  return Object.entries(a).map(([k, v]) => [k, text(v)]);
}

/** AppArmor may be confined to the runtime's profile or a node-local one, never unconfined. */
function appArmorProfile(pod: Pod): PodSecurityViolation[] {
  const byField = podAndContainers(pod, "appArmorProfile", "appArmorProfile.type", (sc) => {
    const profile = obj(sc["appArmorProfile"]);
    if (!profile) return undefined;
    const type = text(profile["type"]);
    return type === "RuntimeDefault" || type === "Localhost"
      ? undefined
      : `must not set securityContext.appArmorProfile.type to ${JSON.stringify(type)} (RuntimeDefault or Localhost)`;
  });
  const byAnnotation = annotations(pod)
    .filter(
      ([k, v]) =>
        k.startsWith(APPARMOR_ANNOTATION_PREFIX) &&
        v !== "" &&
        v !== "runtime/default" &&
        !v.startsWith("localhost/"),
    )
    .map(([k, v]) => ({
      control: "appArmorProfile",
      field: `metadata.annotations[${k}]`,
      message: `pod annotation ${k} must not be ${JSON.stringify(v)} (runtime/default or localhost/<profile>)`,
    }));
  return [...byField, ...byAnnotation];
}

/** Container SELinux types the policy accepts; container_engine_t joined at 1.31. */
function seLinuxTypes(version: number): ReadonlySet<string> {
  const types = ["", "container_t", "container_init_t", "container_kvm_t"];
  return new Set(version >= 31 ? [...types, "container_engine_t"] : types);
}

function seLinuxOptions(pod: Pod): PodSecurityViolation[] {
  const allowed = seLinuxTypes(pod.version);
  const part = (name: string, bad: (o: Obj) => string | undefined) =>
    podAndContainers(pod, "seLinuxOptions", `seLinuxOptions.${name}`, (sc) => {
      const o = obj(sc["seLinuxOptions"]);
      return o ? bad(o) : undefined;
    });
  return [
    ...part("type", (o) =>
      allowed.has(text(o["type"]))
        ? undefined
        : `must not set securityContext.seLinuxOptions.type to ${JSON.stringify(text(o["type"]))} (${quoteList([...allowed].filter(Boolean))} or unset)`,
    ),
    ...part("user", (o) =>
      text(o["user"]) ? "must not set securityContext.seLinuxOptions.user (leave it unset)" : undefined,
    ),
    ...part("role", (o) =>
      text(o["role"]) ? "must not set securityContext.seLinuxOptions.role (leave it unset)" : undefined,
    ),
  ];
}

/** Default /proc masking; baseline waives it for user-namespaced pods from 1.35, restricted never. */
function procMountCheck(control: string, relaxForUserNamespace: boolean) {
  return (pod: Pod): PodSecurityViolation[] => {
    if (relaxForUserNamespace && pod.version >= 35 && pod.userNamespace) return [];
    return pod.containers.flatMap((c) => {
      const v = securityContext(c)?.["procMount"];
      if (!isSet(v) || v === "Default") return [];
      return [
        {
          control,
          field: `${containerPath(c)}.securityContext.procMount`,
          message: `${containerLabel(c)} must not set securityContext.procMount to ${JSON.stringify(text(v))} (Default or unset)`,
        },
      ];
    });
  };
}

function validSeccompType(type: string): boolean {
  return type === "RuntimeDefault" || type === "Localhost";
}

/** Before 1.19 seccomp lived in annotations; the check then read those instead of the field. */
function seccompAnnotations(pod: Pod): PodSecurityViolation[] {
  const keys = [
    "seccomp.security.alpha.kubernetes.io/pod",
    ...pod.containers.map((c) => `container.seccomp.security.alpha.kubernetes.io/${c.name}`),
  ];
  const a = obj(pod.metadata["annotations"]) ?? {};
  return keys.flatMap((k) => {
    if (!(k in a)) return [];
    const v = text(a[k]);
    if (v === "runtime/default" || v === "docker/default" || v.startsWith("localhost/")) return [];
    return [
      {
        control: "seccompProfile_baseline",
        field: `metadata.annotations[${k}]`,
        message: `pod annotation ${k} must not be ${JSON.stringify(v)} (runtime/default or localhost/<profile>)`,
      },
    ];
  });
}

/** Baseline: seccomp may be left unset, but never explicitly Unconfined. */
function seccompBaseline(pod: Pod): PodSecurityViolation[] {
  if (pod.version < 19) return seccompAnnotations(pod);
  return podAndContainers(pod, "seccompProfile_baseline", "seccompProfile.type", (sc) => {
    const profile = obj(sc["seccompProfile"]);
    if (!profile) return undefined;
    const type = text(profile["type"]);
    return validSeccompType(type)
      ? undefined
      : `must not set securityContext.seccompProfile.type to ${JSON.stringify(type)} (RuntimeDefault or Localhost)`;
  });
}

/** Namespaced, node-isolated sysctls; the list grows with the minor that vetted each one. */
const SAFE_SYSCTLS: readonly (readonly [number, readonly string[]])[] = [
  [
    0,
    [
      "kernel.shm_rmid_forced",
      "net.ipv4.ip_local_port_range",
      "net.ipv4.tcp_syncookies",
      "net.ipv4.ping_group_range",
      "net.ipv4.ip_unprivileged_port_start",
    ],
  ],
  [27, ["net.ipv4.ip_local_reserved_ports"]],
  [
    29,
    [
      "net.ipv4.tcp_keepalive_time",
      "net.ipv4.tcp_fin_timeout",
      "net.ipv4.tcp_keepalive_intvl",
      "net.ipv4.tcp_keepalive_probes",
    ],
  ],
  [32, ["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"]],
  [37, ["net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"]],
];

export function safeSysctls(version: number): ReadonlySet<string> {
  return new Set(SAFE_SYSCTLS.filter(([since]) => version >= since).flatMap(([, names]) => names));
}

function sysctls(pod: Pod): PodSecurityViolation[] {
  const safe = safeSysctls(pod.version);
  return arr(podSecurityContext(pod)?.["sysctls"])
    .map((s) => text(obj(s)?.["name"]))
    .filter((name) => !safe.has(name))
    .map((name) => ({
      control: "sysctls",
      field: `securityContext.sysctls[${name}]`,
      message: `pod must not set sysctl ${name} (not in the safe set at v1.${pod.version})`,
    }));
}

const PROBES = ["livenessProbe", "readinessProbe", "startupProbe"] as const;
const HOOKS = ["postStart", "preStop"] as const;

/** Probes and hooks must target the pod itself: a `host` would make the kubelet a proxy. */
function hostProbesAndHostLifecycle(pod: Pod): PodSecurityViolation[] {
  return pod.containers.flatMap((c) => {
    const lifecycle = obj(c.container["lifecycle"]);
    const handlers: [string, Obj | undefined][] = [
      ...PROBES.map((p): [string, Obj | undefined] => [p, obj(c.container[p])]),
      ...HOOKS.map((h): [string, Obj | undefined] => [`lifecycle.${h}`, obj(lifecycle?.[h])]),
    ];
    return handlers.flatMap(([where, handler]) =>
      (["httpGet", "tcpSocket"] as const).flatMap((action) => {
        const host = text(obj(handler?.[action])?.["host"]);
        return host
          ? [
              {
                control: "hostProbesAndHostLifecycle",
                field: `${containerPath(c)}.${where}.${action}.host`,
                message: `${containerLabel(c)} must not set ${where}.${action}.host (${JSON.stringify(host)}); leave it unset to target the pod`,
              },
            ]
          : [];
      }),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Restricted controls

/** Volume sources restricted allows: ephemeral or API-backed, never the node's or a remote mount's. */
const RESTRICTED_VOLUME_SOURCES: ReadonlySet<string> = new Set([
  "configMap",
  "csi",
  "downwardAPI",
  "emptyDir",
  "ephemeral",
  "image",
  "persistentVolumeClaim",
  "projected",
  "secret",
]);

function restrictedVolumes(pod: Pod): PodSecurityViolation[] {
  return volumes(pod).flatMap((v) => {
    const sources = Object.keys(v).filter((k) => k !== "name" && isSet(v[k]));
    // A volume with no source is defaulted to emptyDir before admission sees it.
    if (sources.length === 0 || sources.some((k) => RESTRICTED_VOLUME_SOURCES.has(k))) return [];
    const name = text(v["name"]);
    const source = sources[0] ?? "";
    return [
      {
        control: "restrictedVolumes",
        field: `volumes[${name}].${source}`,
        message: `volume ${name} must not use volume type ${source} (only ${[...RESTRICTED_VOLUME_SOURCES].join(", ")})`,
      },
    ];
  });
}

/** Restricted's Linux-only controls do not apply to Windows pods from 1.25. */
function linuxOnly(check: (pod: Pod) => PodSecurityViolation[]) {
  return (pod: Pod): PodSecurityViolation[] => (pod.version >= 25 && pod.windows ? [] : check(pod));
}

function allowPrivilegeEscalation(pod: Pod): PodSecurityViolation[] {
  return pod.containers
    .filter((c) => securityContext(c)?.["allowPrivilegeEscalation"] !== false)
    .map((c) => ({
      control: "allowPrivilegeEscalation",
      field: `${containerPath(c)}.securityContext.allowPrivilegeEscalation`,
      message: `${containerLabel(c)} must set securityContext.allowPrivilegeEscalation=false`,
    }));
}

/** Root checks are waived for user-namespaced pods from 1.35 (uid 0 inside maps to non-root). */
function rootOnHost(check: (pod: Pod) => PodSecurityViolation[]) {
  return (pod: Pod): PodSecurityViolation[] => (pod.version >= 35 && pod.userNamespace ? [] : check(pod));
}

/**
 * A pod-level `true` covers containers that leave it unset; a container's own value wins over the
 * pod's, and an explicit `false` anywhere is refused.
 */
function runAsNonRoot(pod: Pod): PodSecurityViolation[] {
  const out: PodSecurityViolation[] = [];
  const podValue = podSecurityContext(pod)?.["runAsNonRoot"];
  if (isSet(podValue) && podValue !== true) {
    out.push({
      control: "runAsNonRoot",
      field: "securityContext.runAsNonRoot",
      message: "pod must not set securityContext.runAsNonRoot=false (set it to true)",
    });
  }
  for (const c of pod.containers) {
    const own = securityContext(c)?.["runAsNonRoot"];
    const field = `${containerPath(c)}.securityContext.runAsNonRoot`;
    if (isSet(own)) {
      if (own !== true) {
        out.push({
          control: "runAsNonRoot",
          field,
          message: `${containerLabel(c)} must not set securityContext.runAsNonRoot=false (set it to true)`,
        });
      }
    } else if (podValue !== true) {
      out.push({
        control: "runAsNonRoot",
        field,
        message: `${containerLabel(c)} must set securityContext.runAsNonRoot=true (or the pod must)`,
      });
    }
  }
  return out;
}

function runAsUser(pod: Pod): PodSecurityViolation[] {
  return podAndContainers(pod, "runAsUser", "runAsUser", (sc) =>
    sc["runAsUser"] === 0 ? "must not set securityContext.runAsUser=0 (use a non-zero uid)" : undefined,
  );
}

/** Restricted: seccomp must be confined, at the pod (inherited) or on every container. */
function seccompRestricted(pod: Pod): PodSecurityViolation[] {
  const explicit = seccompBaseline(pod).map((v) => ({ ...v, control: "seccompProfile_restricted" }));
  const podProfile = obj(podSecurityContext(pod)?.["seccompProfile"]);
  const podConfined = podProfile !== undefined && validSeccompType(text(podProfile["type"]));
  const implicit = podConfined
    ? []
    : pod.containers
        .filter((c) => !obj(securityContext(c)?.["seccompProfile"]))
        .map((c) => ({
          control: "seccompProfile_restricted",
          field: `${containerPath(c)}.securityContext.seccompProfile.type`,
          message: `${containerLabel(c)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost" (or the pod must)`,
        }));
  return [...explicit, ...implicit];
}

function capabilitiesRestricted(pod: Pod): PodSecurityViolation[] {
  return pod.containers.flatMap((c) => {
    const caps = obj(securityContext(c)?.["capabilities"]);
    const out: PodSecurityViolation[] = [];
    if (!arr(caps?.["drop"]).includes("ALL")) {
      out.push({
        control: "capabilities_restricted",
        field: `${containerPath(c)}.securityContext.capabilities.drop`,
        message: `${containerLabel(c)} must set securityContext.capabilities.drop=["ALL"]`,
      });
    }
    const extra = addedCapabilities(c).filter((cap) => cap !== "NET_BIND_SERVICE");
    if (extra.length > 0) {
      out.push({
        control: "capabilities_restricted",
        field: `${containerPath(c)}.securityContext.capabilities.add`,
        message: `${containerLabel(c)} must not add ${quoteList(extra)} to securityContext.capabilities.add (only NET_BIND_SERVICE)`,
      });
    }
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// The policy: which checks a level runs at a version

interface Control {
  readonly id: string;
  readonly level: "baseline" | "restricted";
  /** First minor the check exists at. */
  readonly since: number;
  /** A baseline check this restricted one replaces (it is at least as strict). */
  readonly overrides?: string;
  readonly check: (pod: Pod) => PodSecurityViolation[];
}

const CONTROLS: readonly Control[] = [
  { id: "windowsHostProcess", level: "baseline", since: 0, check: windowsHostProcess },
  { id: "hostNamespaces", level: "baseline", since: 0, check: hostNamespaces },
  { id: "privileged", level: "baseline", since: 0, check: privileged },
  { id: "capabilities_baseline", level: "baseline", since: 0, check: capabilitiesBaseline },
  { id: "hostPathVolumes", level: "baseline", since: 0, check: hostPathVolumes },
  { id: "hostPorts", level: "baseline", since: 0, check: hostPorts },
  { id: "hostProbesAndHostLifecycle", level: "baseline", since: 34, check: hostProbesAndHostLifecycle },
  { id: "appArmorProfile", level: "baseline", since: 0, check: appArmorProfile },
  { id: "seLinuxOptions", level: "baseline", since: 0, check: seLinuxOptions },
  { id: "procMount", level: "baseline", since: 0, check: procMountCheck("procMount", true) },
  { id: "seccompProfile_baseline", level: "baseline", since: 0, check: seccompBaseline },
  { id: "sysctls", level: "baseline", since: 0, check: sysctls },
  {
    id: "restrictedVolumes",
    level: "restricted",
    since: 0,
    overrides: "hostPathVolumes",
    check: restrictedVolumes,
  },
  {
    id: "allowPrivilegeEscalation",
    level: "restricted",
    since: 8,
    check: linuxOnly(allowPrivilegeEscalation),
  },
  { id: "runAsNonRoot", level: "restricted", since: 0, check: rootOnHost(runAsNonRoot) },
  { id: "runAsUser", level: "restricted", since: 23, check: rootOnHost(runAsUser) },
  {
    id: "seccompProfile_restricted",
    level: "restricted",
    since: 19,
    overrides: "seccompProfile_baseline",
    check: linuxOnly(seccompRestricted),
  },
  {
    id: "capabilities_restricted",
    level: "restricted",
    since: 22,
    overrides: "capabilities_baseline",
    check: linuxOnly(capabilitiesRestricted),
  },
  {
    id: "procMount_restricted",
    level: "restricted",
    since: 35,
    overrides: "procMount",
    check: procMountCheck("procMount_restricted", false),
  },
];

/** The checks `level` runs at `version`, with overridden baseline checks dropped. */
function controlsFor(level: PodSecurityLevel, version: number): Control[] {
  if (level === "privileged") return [];
  const present = CONTROLS.filter(
    (c) => version >= c.since && (c.level === "baseline" || level === "restricted"),
  );
  const overridden = new Set(present.flatMap((c) => (c.overrides ? [c.overrides] : [])));
  return present.filter((c) => !overridden.has(c.id));
}

/**
 * Every control `spec` fails at `level`, one entry per offending field. Fields are relative to the
 * pod spec (`containers[app].securityContext.runAsNonRoot`), or start with `metadata.` for pod
 * annotations. `privileged` passes everything.
 */
export function checkPodSecurity(
  spec: Readonly<Record<string, unknown>>,
  level: PodSecurityLevel,
  podMetadata?: Readonly<Record<string, unknown>>,
  options: PodSecurityOptions = {},
): PodSecurityViolation[] {
  const version = options.version ?? SERVER_MINOR;
  const s = spec as Obj;
  const pod: Pod = {
    spec: s,
    metadata: podMetadata ?? {},
    containers: containersOf({ kind: "Pod", path: [], spec: s, metadata: {} }),
    version,
    windows: obj(s["os"])?.["name"] === "windows",
    userNamespace: s["hostUsers"] === false,
  };
  return controlsFor(level, version).flatMap((c) => c.check(pod));
}

// ---------------------------------------------------------------------------------------------
// Namespaces

const ENFORCE_LABEL = "pod-security.kubernetes.io/enforce";
const ENFORCE_VERSION_LABEL = "pod-security.kubernetes.io/enforce-version";

/** Namespaces every cluster has; unlabelled, so the API server's default (privileged) applies. */
export const CLUSTER_NAMESPACES: readonly string[] = [
  "default",
  "kube-system",
  "kube-public",
  "kube-node-lease",
];

export interface NamespacePolicy {
  readonly level: PodSecurityLevel;
  /** Kubernetes minor the namespace's checks are evaluated at. */
  readonly version: number;
}

function isLevel(v: unknown): v is PodSecurityLevel {
  return v === "privileged" || v === "baseline" || v === "restricted";
}

/**
 * The enforce policy a Namespace's labels select. A missing level is the server default
 * (privileged); an unparseable one fails closed to restricted, as the API server does. The version
 * is `latest` (the server's own minor) unless pinned, and a pin beyond the server is the server.
 */
export function namespacePolicy(
  labels: Readonly<Record<string, unknown>>,
  serverVersion: number = SERVER_MINOR,
): NamespacePolicy {
  const rawLevel = labels[ENFORCE_LABEL];
  const level: PodSecurityLevel =
    rawLevel === undefined ? "privileged" : isLevel(rawLevel) ? rawLevel : "restricted";
  const pinned = /^v1\.(\d+)$/.exec(text(labels[ENFORCE_VERSION_LABEL]));
  const version = pinned ? Math.min(Number(pinned[1]), serverVersion) : serverVersion;
  return { level, version };
}

function isNamespace(o: Readonly<Record<string, unknown>>): boolean {
  const { apiVersion, kind } = identity(o);
  return kind === "Namespace" && apiVersion === "v1";
}

/** Enforce level and version per namespace: the plan's Namespaces, plus the cluster's own. */
export function namespacePolicies(
  objects: readonly PlanObject[],
  serverVersion: number = SERVER_MINOR,
): Map<string, NamespacePolicy> {
  const out = new Map<string, NamespacePolicy>(
    CLUSTER_NAMESPACES.map((ns) => [ns, { level: "privileged", version: serverVersion }]),
  );
  for (const p of objects) {
    if (!isNamespace(p.object)) continue;
    const name = identity(p.object).name;
    const labels = obj(obj(p.object["metadata"])?.["labels"]) ?? {};
    if (name) out.set(name, namespacePolicy(labels, serverVersion));
  }
  return out;
}

/** Enforce level per namespace (see namespacePolicies). */
export function namespaceLevels(objects: readonly PlanObject[]): Map<string, PodSecurityLevel> {
  return new Map([...namespacePolicies(objects)].map(([ns, p]) => [ns, p.level]));
}

// ---------------------------------------------------------------------------------------------
// Findings

/** The violation's field as a path in the whole object (annotations sit beside the pod spec). */
function objectField(template: PodTemplate, field: string): string {
  if (!field.startsWith("metadata.")) return `${template.path}.${field}`;
  const base = template.path.replace(/(^|\.)spec$/, "");
  return base ? `${base}.${field}` : field;
}

export interface AdmissionOptions {
  /** Minor of the API server (default: the platform's k3s). */
  readonly serverVersion?: number;
}

/**
 * One error per Pod Security violation in every pod template of the plan, at the level its
 * namespace enforces. Namespaces neither planned nor cluster-provided are skipped (reference
 * integrity reports those). The policy pack's exemptions do not apply here: this is the API server.
 */
export function admissionFindings(objects: readonly PlanObject[], options: AdmissionOptions = {}): Finding[] {
  const policies = namespacePolicies(objects, options.serverVersion ?? SERVER_MINOR);
  return objects.flatMap((p) => {
    const templates = podSpecs(p.object);
    if (templates.length === 0) return [];
    const id = identity(p.object);
    const namespace = id.namespace ?? "default";
    const policy = policies.get(namespace);
    if (!policy || policy.level === "privileged") return [];
    // Only Pods are enforced: a controller is admitted and its pods are refused instead.
    const subject = `${describe(p.object)} would ${id.kind === "Pod" ? "be rejected" : "have its pods rejected"}`;
    return templates.flatMap((t) =>
      checkPodSecurity(t.spec, policy.level, t.metadata, { version: policy.version }).map((v): Finding => ({
        check: "admission",
        severity: "error",
        urn: p.urn,
        field: objectField(t, v.field),
        message: `${subject} by Pod Security '${policy.level}' (namespace ${namespace}, control ${v.control}): ${v.message}`,
      })),
    );
  });
}
