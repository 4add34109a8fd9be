/**
 * The Pod Security Standards (baseline and restricted), control by control, as the API server's
 * built-in PodSecurity admission checks them (k8s.io/pod-security-admission, `policy/check_*.go`),
 * including the Kubernetes minor each check starts at: `latest` on a server means the newest checks
 * *that server* knows. Pure functions over a pod spec and its metadata; the policy pack judges every
 * workload with them (`k8s-pod-security-restricted`) and the preflight simulates admission with
 * them (tools/preflight/admission.ts), so both read the standards the same way.
 *
 * One finding per control and offending field. Values unknown during `pulumi preview` are not
 * judged: a finding whose field (or the pod-level field it falls back to) is not known yet is
 * dropped, like every other rule of the pack does.
 */
import { containersOf, type ContainerKind, type ContainerRef } from "./k8s";
import { arr, isUnknown, obj, str, type Obj } from "./values";

export type PodSecurityLevel = "privileged" | "baseline" | "restricted";
export type ControlLevel = Exclude<PodSecurityLevel, "privileged">;

/** Newest Kubernetes minor whose checks this module knows (upstream's newest versioned check). */
export const NEWEST_CHECKS_MINOR = 37;

/** One control a pod fails, at one field. */
export interface PodSecurityFinding {
  /** Upstream check id (`allowPrivilegeEscalation`, `seccompProfile_restricted`, ...). */
  readonly control: string;
  /** The standard's name for the control ("Privilege Escalation", "Seccomp", ...). */
  readonly controlName: string;
  readonly level: ControlLevel;
  /**
   * The field, relative to the pod spec (or `metadata.` for pod annotations), naming containers,
   * volumes, ports and sysctls by name: `containers[app].securityContext.runAsNonRoot`.
   */
  readonly field: string;
  /** The same field as a concrete path (indices), for the whole object's path (`podSecurityPath`). */
  readonly at: readonly (string | number)[];
  /** The container the finding is about; unset for pod-level fields and volumes. */
  readonly container?: ContainerRef;
  /** Capabilities a capabilities finding objects to (set on `capabilities.add` findings only). */
  readonly capabilities?: readonly string[];
  /** What is wrong and what would be right, naming the pod or container. */
  readonly message: string;
}

export interface PodSecurityOptions {
  /** Kubernetes minor the standards are applied at (default: the newest this module knows). */
  readonly version?: number;
}

// ---------------------------------------------------------------------------------------------
// The pod as the checks see it

interface Pod {
  readonly spec: Obj;
  readonly metadata: Obj;
  /** Paths relative to the pod spec (`containers`, 0). */
  readonly containers: readonly ContainerRef[];
  readonly version: number;
  /** `spec.os.name: windows`: restricted's Linux-only controls skip such pods from 1.25. */
  readonly windows: boolean;
  /** `spec.hostUsers: false`: from 1.35 root inside a user namespace is not root on the node. */
  readonly userNamespace: boolean;
}

/** A finding as a check builds it; the control's id, name and level are added by `checkPodSecurity`. */
interface Hit {
  readonly field: string;
  readonly at: readonly (string | number)[];
  readonly container?: ContainerRef;
  readonly capabilities?: readonly string[];
  /** A pod-level field the finding falls back to: when that is unknown, so is the finding. */
  readonly inherits?: readonly (string | number)[];
  readonly message: string;
}

const CONTAINER_FIELD: Record<ContainerKind, string> = {
  container: "containers",
  initContainer: "initContainers",
  ephemeralContainer: "ephemeralContainers",
};

/** `containers[prom-exporter]`: containers are named, not indexed, so fields survive reordering. */
function containerField(c: ContainerRef): string {
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

/** A hit on the container's own field `sub` (dotted, below the container). */
function onContainer(c: ContainerRef, sub: string, message: string, extra: Partial<Hit> = {}): Hit {
  return {
    field: `${containerField(c)}.${sub}`,
    at: [...c.path, ...sub.split(".")],
    container: c,
    message: `${containerLabel(c)} ${message}`,
    ...extra,
  };
}

/** A hit at the pod's securityContext and one per container whose own setting is bad. */
function podAndContainers(pod: Pod, subField: string, bad: (sc: Obj) => string | undefined): Hit[] {
  const out: Hit[] = [];
  const psc = podSecurityContext(pod);
  const podBad = psc ? bad(psc) : undefined;
  if (podBad !== undefined) {
    const field = `securityContext.${subField}`;
    out.push({ field, at: field.split("."), message: `pod ${podBad}` });
  }
  for (const c of pod.containers) {
    const sc = securityContext(c);
    const why = sc ? bad(sc) : undefined;
    if (why !== undefined) out.push(onContainer(c, `securityContext.${subField}`, why));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Baseline controls

/** Windows HostProcess containers run as the node: nothing else in the policy matters then. */
function windowsHostProcess(pod: Pod): Hit[] {
  return podAndContainers(pod, "windowsOptions.hostProcess", (sc) =>
    obj(sc["windowsOptions"])?.["hostProcess"] === true
      ? "must not set securityContext.windowsOptions.hostProcess=true (or leave it unset)"
      : undefined,
  );
}

function hostNamespaces(pod: Pod): Hit[] {
  return ["hostNetwork", "hostPID", "hostIPC"]
    .filter((f) => pod.spec[f] === true)
    .map((f) => ({
      field: f,
      at: [f],
      message: `pod must not share the host's namespace: set ${f}=false (or leave it unset)`,
    }));
}

function privileged(pod: Pod): Hit[] {
  return pod.containers
    .filter((c) => securityContext(c)?.["privileged"] === true)
    .map((c) => onContainer(c, "securityContext.privileged", "must not set securityContext.privileged=true"));
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

/** A finding on `capabilities.add` for the capabilities beyond `allowed`, if any. */
function capabilitiesAdded(c: ContainerRef, allowed: (cap: string) => boolean, only: string): Hit[] {
  const extra = addedCapabilities(c).filter((cap) => !allowed(cap));
  return extra.length === 0
    ? []
    : [
        onContainer(
          c,
          "securityContext.capabilities.add",
          `must not add ${quoteList(extra)} to securityContext.capabilities.add (${only})`,
          { capabilities: extra },
        ),
      ];
}

function capabilitiesBaseline(pod: Pod): Hit[] {
  return pod.containers.flatMap((c) =>
    capabilitiesAdded(
      c,
      (cap) => BASELINE_CAPABILITIES.has(cap),
      "only the runtime's default set is allowed",
    ),
  );
}

/** Volumes with their index (paths) and name (fields). */
function volumes(pod: Pod): { volume: Obj; index: number; name: string }[] {
  return arr(pod.spec["volumes"]).flatMap((v, index) => {
    const volume = obj(v);
    return volume ? [{ volume, index, name: text(volume["name"]) }] : [];
  });
}

function hostPathVolumes(pod: Pod): Hit[] {
  return volumes(pod)
    .filter((v) => isSet(v.volume["hostPath"]))
    .map((v) => ({
      field: `volumes[${v.name}].hostPath`,
      at: ["volumes", v.index, "hostPath"],
      message: `volume ${v.name} must not be a hostPath volume`,
    }));
}

function hostPorts(pod: Pod): Hit[] {
  return pod.containers.flatMap((c) =>
    arr(c.container["ports"]).flatMap((p, i) => {
      const port = obj(p);
      const hostPort = port?.["hostPort"];
      if (!isSet(hostPort) || hostPort === 0) return [];
      const key = str(port?.["name"]) ?? String(i);
      return [
        {
          field: `${containerField(c)}.ports[${key}].hostPort`,
          at: [...c.path, "ports", i, "hostPort"],
          container: c,
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

/** A hit on a pod annotation; about the named container when the pod has one of that name. */
function onAnnotation(pod: Pod, key: string, message: string, containerName?: string): Hit {
  const container =
    containerName === undefined ? undefined : pod.containers.find((c) => c.name === containerName);
  return {
    field: `metadata.annotations[${key}]`,
    at: ["metadata", "annotations", key],
    ...(container ? { container } : {}),
    message,
  };
}

/** AppArmor may be confined to the runtime's profile or a node-local one, never unconfined. */
function appArmorProfile(pod: Pod): Hit[] {
  const byField = podAndContainers(pod, "appArmorProfile.type", (sc) => {
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
    .map(([k, v]) =>
      onAnnotation(
        pod,
        k,
        `pod annotation ${k} must not be ${JSON.stringify(v)} (runtime/default or localhost/<profile>)`,
        k.slice(APPARMOR_ANNOTATION_PREFIX.length),
      ),
    );
  return [...byField, ...byAnnotation];
}

/** Container SELinux types the policy accepts; container_engine_t joined at 1.31. */
function seLinuxTypes(version: number): ReadonlySet<string> {
  const types = ["", "container_t", "container_init_t", "container_kvm_t"];
  return new Set(version >= 31 ? [...types, "container_engine_t"] : types);
}

function seLinuxOptions(pod: Pod): Hit[] {
  const allowed = seLinuxTypes(pod.version);
  const part = (name: string, bad: (o: Obj) => string | undefined) =>
    podAndContainers(pod, `seLinuxOptions.${name}`, (sc) => {
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
function procMountCheck(relaxForUserNamespace: boolean) {
  return (pod: Pod): Hit[] => {
    if (relaxForUserNamespace && pod.version >= 35 && pod.userNamespace) return [];
    return pod.containers.flatMap((c) => {
      const v = securityContext(c)?.["procMount"];
      if (!isSet(v) || v === "Default") return [];
      return [
        onContainer(
          c,
          "securityContext.procMount",
          `must not set securityContext.procMount to ${JSON.stringify(text(v))} (Default or unset)`,
        ),
      ];
    });
  };
}

function validSeccompType(type: string): boolean {
  return type === "RuntimeDefault" || type === "Localhost";
}

const SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/";

/** Before 1.19 seccomp lived in annotations; the check then read those instead of the field. */
function seccompAnnotations(pod: Pod): Hit[] {
  const keys: [string, string | undefined][] = [
    [SECCOMP_POD_ANNOTATION, undefined],
    ...pod.containers.map((c): [string, string] => [
      `${SECCOMP_CONTAINER_ANNOTATION_PREFIX}${c.name}`,
      c.name,
    ]),
  ];
  const a = obj(pod.metadata["annotations"]) ?? {};
  return keys.flatMap(([k, container]) => {
    if (!(k in a)) return [];
    const v = text(a[k]);
    if (v === "runtime/default" || v === "docker/default" || v.startsWith("localhost/")) return [];
    return [
      onAnnotation(
        pod,
        k,
        `pod annotation ${k} must not be ${JSON.stringify(v)} (runtime/default or localhost/<profile>)`,
        container,
      ),
    ];
  });
}

/** Baseline: seccomp may be left unset, but never explicitly Unconfined. */
function seccompBaseline(pod: Pod): Hit[] {
  if (pod.version < 19) return seccompAnnotations(pod);
  return podAndContainers(pod, "seccompProfile.type", (sc) => {
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

/** The sysctls baseline allows at `version`. */
export function safeSysctls(version: number): ReadonlySet<string> {
  return new Set(SAFE_SYSCTLS.filter(([since]) => version >= since).flatMap(([, names]) => names));
}

function sysctls(pod: Pod): Hit[] {
  const safe = safeSysctls(pod.version);
  return arr(podSecurityContext(pod)?.["sysctls"]).flatMap((s, i) => {
    const name = text(obj(s)?.["name"]);
    return safe.has(name)
      ? []
      : [
          {
            field: `securityContext.sysctls[${name}]`,
            at: ["securityContext", "sysctls", i, "name"],
            message: `pod must not set sysctl ${name} (not in the safe set at v1.${pod.version})`,
          },
        ];
  });
}

const PROBES = ["livenessProbe", "readinessProbe", "startupProbe"] as const;
const HOOKS = ["postStart", "preStop"] as const;

/** Probes and hooks must target the pod itself: a `host` would make the kubelet a proxy. */
function hostProbesAndHostLifecycle(pod: Pod): Hit[] {
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
              onContainer(
                c,
                `${where}.${action}.host`,
                `must not set ${where}.${action}.host (${JSON.stringify(host)}); leave it unset to target the pod`,
              ),
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

function restrictedVolumes(pod: Pod): Hit[] {
  return volumes(pod).flatMap(({ volume, index, name }) => {
    const sources = Object.keys(volume).filter((k) => k !== "name" && isSet(volume[k]));
    // A volume with no source is defaulted to emptyDir before admission sees it.
    if (sources.length === 0 || sources.some((k) => RESTRICTED_VOLUME_SOURCES.has(k))) return [];
    const source = sources[0] ?? "";
    return [
      {
        field: `volumes[${name}].${source}`,
        at: ["volumes", index, source],
        message: `volume ${name} must not use volume type ${source} (only ${[...RESTRICTED_VOLUME_SOURCES].join(", ")})`,
      },
    ];
  });
}

/** Restricted's Linux-only controls do not apply to Windows pods from 1.25. */
function linuxOnly(check: (pod: Pod) => Hit[]) {
  return (pod: Pod): Hit[] => (pod.version >= 25 && pod.windows ? [] : check(pod));
}

function allowPrivilegeEscalation(pod: Pod): Hit[] {
  return pod.containers
    .filter((c) => securityContext(c)?.["allowPrivilegeEscalation"] !== false)
    .map((c) =>
      onContainer(
        c,
        "securityContext.allowPrivilegeEscalation",
        "must set securityContext.allowPrivilegeEscalation=false",
      ),
    );
}

/** Root checks are waived for user-namespaced pods from 1.35 (uid 0 inside maps to non-root). */
function rootOnHost(check: (pod: Pod) => Hit[]) {
  return (pod: Pod): Hit[] => (pod.version >= 35 && pod.userNamespace ? [] : check(pod));
}

/**
 * A pod-level `true` covers containers that leave it unset; a container's own value wins over the
 * pod's, and an explicit `false` anywhere is refused. Containers that leave it unset are reported
 * only when the pod does too: under a pod-level `false` the pod's field is the one to change.
 */
function runAsNonRoot(pod: Pod): Hit[] {
  const out: Hit[] = [];
  const podValue = podSecurityContext(pod)?.["runAsNonRoot"];
  if (isSet(podValue) && podValue !== true) {
    out.push({
      field: "securityContext.runAsNonRoot",
      at: ["securityContext", "runAsNonRoot"],
      message: "pod must not set securityContext.runAsNonRoot=false (set it to true)",
    });
  }
  for (const c of pod.containers) {
    const own = securityContext(c)?.["runAsNonRoot"];
    const sub = "securityContext.runAsNonRoot";
    if (isSet(own)) {
      if (own !== true)
        out.push(onContainer(c, sub, "must not set securityContext.runAsNonRoot=false (set it to true)"));
    } else if (!isSet(podValue)) {
      out.push(
        onContainer(c, sub, "must set securityContext.runAsNonRoot=true (or the pod must)", {
          inherits: ["securityContext", "runAsNonRoot"],
        }),
      );
    }
  }
  return out;
}

function runAsUser(pod: Pod): Hit[] {
  return podAndContainers(pod, "runAsUser", (sc) =>
    sc["runAsUser"] === 0 ? "must not set securityContext.runAsUser=0 (use a non-zero uid)" : undefined,
  );
}

/**
 * Restricted: seccomp must be confined, at the pod (inherited) or on every container. Containers
 * without their own profile are reported only when the pod has none either: under an unconfined
 * pod-level profile, the pod's field is the one to change.
 */
function seccompRestricted(pod: Pod): Hit[] {
  const explicit = seccompBaseline(pod);
  const podProfile = podSecurityContext(pod)?.["seccompProfile"];
  const implicit = isSet(podProfile)
    ? []
    : pod.containers
        .filter((c) => !obj(securityContext(c)?.["seccompProfile"]))
        .map((c) =>
          onContainer(
            c,
            "securityContext.seccompProfile.type",
            'must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost" (or the pod must)',
            { inherits: ["securityContext", "seccompProfile", "type"] },
          ),
        );
  return [...explicit, ...implicit];
}

function capabilitiesRestricted(pod: Pod): Hit[] {
  return pod.containers.flatMap((c) => {
    const caps = obj(securityContext(c)?.["capabilities"]);
    const dropsAll = arr(caps?.["drop"]).includes("ALL");
    return [
      ...(dropsAll
        ? []
        : [
            onContainer(
              c,
              "securityContext.capabilities.drop",
              'must set securityContext.capabilities.drop=["ALL"]',
            ),
          ]),
      ...capabilitiesAdded(c, (cap) => cap === "NET_BIND_SERVICE", "only NET_BIND_SERVICE"),
    ];
  });
}

// ---------------------------------------------------------------------------------------------
// The standards: which checks a level runs at a version

/** A control of the standards as one upstream check implements it. */
export interface PodSecurityControl {
  /** Upstream check id. */
  readonly id: string;
  /** The standard's name for the control. */
  readonly name: string;
  readonly level: ControlLevel;
  /** First Kubernetes minor the check exists at. */
  readonly since: number;
  /** A baseline check this restricted one replaces (it is at least as strict). */
  readonly overrides?: string;
}

interface Control extends PodSecurityControl {
  readonly check: (pod: Pod) => Hit[];
}

const CONTROLS: readonly Control[] = [
  { id: "windowsHostProcess", name: "HostProcess", level: "baseline", since: 0, check: windowsHostProcess },
  { id: "hostNamespaces", name: "Host Namespaces", level: "baseline", since: 0, check: hostNamespaces },
  { id: "privileged", name: "Privileged Containers", level: "baseline", since: 0, check: privileged },
  {
    id: "capabilities_baseline",
    name: "Capabilities",
    level: "baseline",
    since: 0,
    check: capabilitiesBaseline,
  },
  { id: "hostPathVolumes", name: "HostPath Volumes", level: "baseline", since: 0, check: hostPathVolumes },
  { id: "hostPorts", name: "Host Ports", level: "baseline", since: 0, check: hostPorts },
  {
    id: "hostProbesAndHostLifecycle",
    name: "Host Probes / Lifecycle Hooks",
    level: "baseline",
    since: 34,
    check: hostProbesAndHostLifecycle,
  },
  { id: "appArmorProfile", name: "AppArmor", level: "baseline", since: 0, check: appArmorProfile },
  { id: "seLinuxOptions", name: "SELinux", level: "baseline", since: 0, check: seLinuxOptions },
  { id: "procMount", name: "/proc Mount Type", level: "baseline", since: 0, check: procMountCheck(true) },
  { id: "seccompProfile_baseline", name: "Seccomp", level: "baseline", since: 0, check: seccompBaseline },
  { id: "sysctls", name: "Sysctls", level: "baseline", since: 0, check: sysctls },
  {
    id: "restrictedVolumes",
    name: "Volume Types",
    level: "restricted",
    since: 0,
    overrides: "hostPathVolumes",
    check: restrictedVolumes,
  },
  {
    id: "allowPrivilegeEscalation",
    name: "Privilege Escalation",
    level: "restricted",
    since: 8,
    check: linuxOnly(allowPrivilegeEscalation),
  },
  {
    id: "runAsNonRoot",
    name: "Running as Non-root",
    level: "restricted",
    since: 0,
    check: rootOnHost(runAsNonRoot),
  },
  {
    id: "runAsUser",
    name: "Running as Non-root user",
    level: "restricted",
    since: 23,
    check: rootOnHost(runAsUser),
  },
  {
    id: "seccompProfile_restricted",
    name: "Seccomp",
    level: "restricted",
    since: 19,
    overrides: "seccompProfile_baseline",
    check: linuxOnly(seccompRestricted),
  },
  {
    id: "capabilities_restricted",
    name: "Capabilities",
    level: "restricted",
    since: 22,
    overrides: "capabilities_baseline",
    check: linuxOnly(capabilitiesRestricted),
  },
  {
    id: "procMount_restricted",
    name: "/proc Mount Type",
    level: "restricted",
    since: 35,
    overrides: "procMount",
    check: procMountCheck(false),
  },
];

/** Every control of both levels, as data (the checks stay private). */
export const POD_SECURITY_CONTROLS: readonly PodSecurityControl[] = CONTROLS.map(
  ({ check: _check, ...control }) => control,
);

/** The checks `level` runs at `version`, with overridden baseline checks dropped. */
function controlsFor(level: PodSecurityLevel, version: number): Control[] {
  if (level === "privileged") return [];
  const present = CONTROLS.filter(
    (c) => version >= c.since && (c.level === "baseline" || level === "restricted"),
  );
  const overridden = new Set(present.flatMap((c) => (c.overrides ? [c.overrides] : [])));
  return present.filter((c) => !overridden.has(c.id));
}

/** The ids of the controls `level` checks at `version`. */
export function controlIdsFor(level: PodSecurityLevel, version: number = NEWEST_CHECKS_MINOR): string[] {
  return controlsFor(level, version).map((c) => c.id);
}

/**
 * Whether a value on the way to `at` (or the value itself) is a preview unknown. A list holding an
 * unknown counts as unknown: which capabilities it drops is not known yet.
 */
function unknownAlong(pod: Pod, at: readonly (string | number)[]): boolean {
  const [first, ...rest] = at;
  let cur: unknown = first === "metadata" ? pod.metadata : pod.spec;
  const path = first === "metadata" ? rest : at;
  for (const seg of path) {
    if (isUnknown(cur)) return true;
    if (cur === null || typeof cur !== "object") return false;
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return isUnknown(cur) || (Array.isArray(cur) && cur.some(isUnknown));
}

/**
 * Every control `spec` fails at `level`, one finding per offending field (see PodSecurityFinding).
 * `privileged` passes everything. Fields whose value is unknown during preview are not judged.
 */
export function checkPodSecurity(
  spec: Readonly<Record<string, unknown>>,
  level: PodSecurityLevel,
  podMetadata?: Readonly<Record<string, unknown>>,
  options: PodSecurityOptions = {},
): PodSecurityFinding[] {
  const version = options.version ?? NEWEST_CHECKS_MINOR;
  const s = spec as Obj;
  const pod: Pod = {
    spec: s,
    metadata: podMetadata ?? {},
    containers: containersOf({ kind: "Pod", path: [], spec: s, metadata: {} }),
    version,
    windows: obj(s["os"])?.["name"] === "windows",
    userNamespace: s["hostUsers"] === false,
  };
  return controlsFor(level, version).flatMap((c) =>
    c
      .check(pod)
      .filter((h) => !unknownAlong(pod, h.at) && !(h.inherits && unknownAlong(pod, h.inherits)))
      .map(({ inherits: _inherits, ...h }) => ({
        control: c.id,
        controlName: c.name,
        level: c.level,
        ...h,
      })),
  );
}

// ---------------------------------------------------------------------------------------------
// Paths in the whole object

/** Where a pod-relative path lands in the object: annotations sit beside the pod spec, not in it. */
function fromPodSpec<T>(podSpecPath: readonly T[], first: unknown): readonly T[] {
  return first === "metadata" && podSpecPath[podSpecPath.length - 1] === "spec"
    ? podSpecPath.slice(0, -1)
    : podSpecPath;
}

/** The finding's concrete path in the object whose pod spec is at `podSpecPath` (`spec.template.spec`). */
export function podSecurityPath(
  podSpecPath: readonly (string | number)[],
  finding: Pick<PodSecurityFinding, "at">,
): (string | number)[] {
  return [...fromPodSpec(podSpecPath, finding.at[0]), ...finding.at];
}

/** The finding's named field in the object whose pod spec is at the dotted `podSpecPath`. */
export function podSecurityField(podSpecPath: string, finding: Pick<PodSecurityFinding, "field">): string {
  const segments = podSpecPath === "" ? [] : podSpecPath.split(".");
  const first = finding.field.startsWith("metadata.") ? "metadata" : undefined;
  return [...fromPodSpec(segments, first), finding.field].join(".");
}
