import { describe, expect, it } from "vitest";
import {
  checkPodSecurity,
  controlIdsFor,
  NEWEST_CHECKS_MINOR,
  POD_SECURITY_CONTROLS,
  podSecurityField,
  podSecurityPath,
  type PodSecurityLevel,
} from "../lib/pss";
import { UNKNOWN, type Obj } from "../lib/values";

/**
 * A pod every level admits: pod-level non-root and seccomp, every container locked down, one
 * container of each kind, and one volume of every source restricted allows.
 */
function locked(): Obj {
  const sc = () => ({ allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
  return {
    securityContext: { runAsNonRoot: true, runAsUser: 2000, seccompProfile: { type: "RuntimeDefault" } },
    containers: [
      {
        name: "web",
        image: "example.test/web:2",
        ports: [{ name: "http", containerPort: 8000 }, { containerPort: 9000 }],
        readinessProbe: { httpGet: { path: "/ready", port: 8000 } },
        lifecycle: { preStop: { httpGet: { path: "/drain", port: 8000 } } },
        securityContext: sc(),
      },
    ],
    initContainers: [{ name: "migrate", image: "example.test/migrate:2", securityContext: sc() }],
    ephemeralContainers: [{ name: "shell", image: "example.test/shell:2", securityContext: sc() }],
    volumes: [
      { name: "cfg", configMap: { name: "web" } },
      { name: "scratch", emptyDir: { medium: "Memory" } },
      { name: "sa", projected: { sources: [] } },
      { name: "tls", secret: { secretName: "web-tls" } },
      { name: "state", persistentVolumeClaim: { claimName: "state" } },
      { name: "inline", csi: { driver: "secrets-store.csi.k8s.io" } },
      { name: "eph", ephemeral: { volumeClaimTemplate: { spec: {} } } },
      { name: "meta", downwardAPI: { items: [] } },
      { name: "weights", image: { reference: "example.test/weights:2" } },
      { name: "defaulted" },
    ],
  };
}

type Path = (string | number)[];

/** Sets `value` at `path` in `root`, creating objects on the way (fixtures only). */
function put(root: Obj, path: Path, value: unknown): void {
  let cur = root as Record<string | number, unknown>;
  path.slice(0, -1).forEach((seg) => {
    cur[seg] ??= {};
    cur = cur[seg] as Record<string | number, unknown>;
  });
  cur[path[path.length - 1]!] = value;
}

function drop(root: Obj, path: Path): void {
  let cur = root as Record<string | number, unknown>;
  for (const seg of path.slice(0, -1)) cur = cur[seg] as Record<string | number, unknown>;
  delete cur[path[path.length - 1]!];
}

const WEB: Path = ["containers", 0];
const WEB_SC: Path = [...WEB, "securityContext"];
const INIT_SC: Path = ["initContainers", 0, "securityContext"];
const SHELL_SC: Path = ["ephemeralContainers", 0, "securityContext"];
const POD_SC: Path = ["securityContext"];

/** The locked pod with `edits` applied to a copy. */
function variant(...edits: [Path, unknown][]): Obj {
  const spec = structuredClone(locked());
  for (const [path, value] of edits) {
    if (value === undefined) drop(spec, path);
    else put(spec, path, value);
  }
  return spec;
}

interface Case {
  readonly name: string;
  readonly spec: Obj;
  readonly metadata?: Obj;
  readonly version?: number;
}

interface Violation extends Case {
  readonly control: string;
  readonly field: string;
}

interface Pass extends Case {
  readonly control: string;
}

const ANNOTATION = "container.apparmor.security.beta.kubernetes.io/web";

/** Baseline: each case breaks exactly one control at exactly one field. */
const BASELINE: readonly Violation[] = [
  {
    name: "hostProcess at the pod",
    spec: variant([[...POD_SC, "windowsOptions", "hostProcess"], true]),
    control: "windowsHostProcess",
    field: "securityContext.windowsOptions.hostProcess",
  },
  {
    name: "hostProcess on an ephemeral container",
    spec: variant([[...SHELL_SC, "windowsOptions", "hostProcess"], true]),
    control: "windowsHostProcess",
    field: "ephemeralContainers[shell].securityContext.windowsOptions.hostProcess",
  },
  {
    name: "hostNetwork",
    spec: variant([["hostNetwork"], true]),
    control: "hostNamespaces",
    field: "hostNetwork",
  },
  { name: "hostPID", spec: variant([["hostPID"], true]), control: "hostNamespaces", field: "hostPID" },
  { name: "hostIPC", spec: variant([["hostIPC"], true]), control: "hostNamespaces", field: "hostIPC" },
  {
    name: "a privileged container",
    spec: variant([[...WEB_SC, "privileged"], true]),
    control: "privileged",
    field: "containers[web].securityContext.privileged",
  },
  {
    name: "a privileged init container",
    spec: variant([[...INIT_SC, "privileged"], true]),
    control: "privileged",
    field: "initContainers[migrate].securityContext.privileged",
  },
  {
    name: "SYS_ADMIN added",
    spec: variant([[...WEB_SC, "capabilities", "add"], ["SYS_ADMIN"]]),
    control: "capabilities_baseline",
    field: "containers[web].securityContext.capabilities.add",
  },
  {
    name: "NET_RAW added (not in the runtime's default set)",
    spec: variant([[...INIT_SC, "capabilities", "add"], ["NET_RAW"]]),
    control: "capabilities_baseline",
    field: "initContainers[migrate].securityContext.capabilities.add",
  },
  {
    name: "a hostPath volume",
    spec: variant([["volumes", 10], { name: "docker", hostPath: { path: "/var/run/docker.sock" } }]),
    control: "hostPathVolumes",
    field: "volumes[docker].hostPath",
  },
  {
    name: "a named hostPort",
    spec: variant([[...WEB, "ports", 0, "hostPort"], 80]),
    control: "hostPorts",
    field: "containers[web].ports[http].hostPort",
  },
  {
    name: "an unnamed hostPort",
    spec: variant([[...WEB, "ports", 1, "hostPort"], 9000]),
    control: "hostPorts",
    field: "containers[web].ports[1].hostPort",
  },
  {
    name: "a readiness probe at another host",
    spec: variant([[...WEB, "readinessProbe", "httpGet", "host"], "10.1.2.3"]),
    control: "hostProbesAndHostLifecycle",
    field: "containers[web].readinessProbe.httpGet.host",
  },
  {
    name: "a startup probe's tcpSocket at another host",
    spec: variant([[...WEB, "startupProbe"], { tcpSocket: { host: "db.internal", port: 5432 } }]),
    control: "hostProbesAndHostLifecycle",
    field: "containers[web].startupProbe.tcpSocket.host",
  },
  {
    name: "a preStop hook at another host",
    spec: variant([[...WEB, "lifecycle", "preStop", "httpGet", "host"], "metadata.internal"]),
    control: "hostProbesAndHostLifecycle",
    field: "containers[web].lifecycle.preStop.httpGet.host",
  },
  {
    name: "AppArmor Unconfined at the pod",
    spec: variant([[...POD_SC, "appArmorProfile"], { type: "Unconfined" }]),
    control: "appArmorProfile",
    field: "securityContext.appArmorProfile.type",
  },
  {
    name: "AppArmor Unconfined on a container",
    spec: variant([[...WEB_SC, "appArmorProfile"], { type: "Unconfined" }]),
    control: "appArmorProfile",
    field: "containers[web].securityContext.appArmorProfile.type",
  },
  {
    name: "the AppArmor annotation unconfined",
    spec: locked(),
    metadata: { annotations: { [ANNOTATION]: "unconfined" } },
    control: "appArmorProfile",
    field: `metadata.annotations[${ANNOTATION}]`,
  },
  {
    name: "SELinux type spc_t at the pod",
    spec: variant([[...POD_SC, "seLinuxOptions"], { type: "spc_t" }]),
    control: "seLinuxOptions",
    field: "securityContext.seLinuxOptions.type",
  },
  {
    name: "SELinux user on a container",
    spec: variant([[...WEB_SC, "seLinuxOptions"], { user: "sysadm_u" }]),
    control: "seLinuxOptions",
    field: "containers[web].securityContext.seLinuxOptions.user",
  },
  {
    name: "SELinux role on an init container",
    spec: variant([[...INIT_SC, "seLinuxOptions"], { role: "sysadm_r" }]),
    control: "seLinuxOptions",
    field: "initContainers[migrate].securityContext.seLinuxOptions.role",
  },
  {
    name: "procMount Unmasked",
    spec: variant([[...WEB_SC, "procMount"], "Unmasked"]),
    control: "procMount",
    field: "containers[web].securityContext.procMount",
  },
  {
    name: "seccomp Unconfined at the pod",
    spec: variant([[...POD_SC, "seccompProfile"], { type: "Unconfined" }]),
    control: "seccompProfile_baseline",
    field: "securityContext.seccompProfile.type",
  },
  {
    name: "seccomp Unconfined on an ephemeral container",
    spec: variant([[...SHELL_SC, "seccompProfile"], { type: "Unconfined" }]),
    control: "seccompProfile_baseline",
    field: "ephemeralContainers[shell].securityContext.seccompProfile.type",
  },
  {
    name: "an unsafe sysctl",
    spec: variant([[...POD_SC, "sysctls"], [{ name: "kernel.sem", value: "250 32000 32 128" }]]),
    control: "sysctls",
    field: "securityContext.sysctls[kernel.sem]",
  },
  {
    name: "a sysctl only safe from a later version",
    spec: variant([[...POD_SC, "sysctls"], [{ name: "net.ipv4.tcp_notsent_lowat", value: "16384" }]]),
    version: 36,
    control: "sysctls",
    field: "securityContext.sysctls[net.ipv4.tcp_notsent_lowat]",
  },
];

/** Restricted: each case passes baseline and breaks exactly one restricted control. */
const RESTRICTED: readonly Violation[] = [
  {
    name: "an NFS volume",
    spec: variant([["volumes", 10], { name: "share", nfs: { server: "nas", path: "/export" } }]),
    control: "restrictedVolumes",
    field: "volumes[share].nfs",
  },
  {
    name: "a gitRepo volume",
    spec: variant([["volumes", 10], { name: "src", gitRepo: { repository: "https://example.test/r" } }]),
    control: "restrictedVolumes",
    field: "volumes[src].gitRepo",
  },
  {
    name: "allowPrivilegeEscalation left unset",
    spec: variant([[...WEB_SC, "allowPrivilegeEscalation"], undefined]),
    control: "allowPrivilegeEscalation",
    field: "containers[web].securityContext.allowPrivilegeEscalation",
  },
  {
    name: "allowPrivilegeEscalation true on an ephemeral container",
    spec: variant([[...SHELL_SC, "allowPrivilegeEscalation"], true]),
    control: "allowPrivilegeEscalation",
    field: "ephemeralContainers[shell].securityContext.allowPrivilegeEscalation",
  },
  {
    name: "runAsNonRoot false at the pod",
    spec: variant(
      [[...POD_SC, "runAsNonRoot"], false],
      [[...WEB_SC, "runAsNonRoot"], true],
      [[...INIT_SC, "runAsNonRoot"], true],
      [[...SHELL_SC, "runAsNonRoot"], true],
    ),
    control: "runAsNonRoot",
    field: "securityContext.runAsNonRoot",
  },
  {
    name: "runAsNonRoot false on a container despite the pod",
    spec: variant([[...INIT_SC, "runAsNonRoot"], false]),
    control: "runAsNonRoot",
    field: "initContainers[migrate].securityContext.runAsNonRoot",
  },
  {
    name: "runAsNonRoot unset on one container and at the pod",
    spec: variant(
      [[...POD_SC, "runAsNonRoot"], undefined],
      [[...WEB_SC, "runAsNonRoot"], true],
      [[...INIT_SC, "runAsNonRoot"], true],
    ),
    control: "runAsNonRoot",
    field: "ephemeralContainers[shell].securityContext.runAsNonRoot",
  },
  {
    name: "runAsUser 0 at the pod",
    spec: variant([[...POD_SC, "runAsUser"], 0]),
    control: "runAsUser",
    field: "securityContext.runAsUser",
  },
  {
    name: "runAsUser 0 on a container",
    spec: variant([[...WEB_SC, "runAsUser"], 0]),
    control: "runAsUser",
    field: "containers[web].securityContext.runAsUser",
  },
  {
    name: "seccomp missing on one container and at the pod",
    spec: variant(
      [[...POD_SC, "seccompProfile"], undefined],
      [[...WEB_SC, "seccompProfile"], { type: "RuntimeDefault" }],
      [[...SHELL_SC, "seccompProfile"], { type: "Localhost", localhostProfile: "shell.json" }],
    ),
    control: "seccompProfile_restricted",
    field: "initContainers[migrate].securityContext.seccompProfile.type",
  },
  {
    name: "capabilities not dropped",
    spec: variant([[...WEB_SC, "capabilities"], undefined]),
    control: "capabilities_restricted",
    field: "containers[web].securityContext.capabilities.drop",
  },
  {
    name: "a default-set capability added",
    spec: variant([[...INIT_SC, "capabilities", "add"], ["CHOWN"]]),
    control: "capabilities_restricted",
    field: "initContainers[migrate].securityContext.capabilities.add",
  },
  {
    name: "procMount Unmasked in a user-namespaced pod",
    spec: variant([["hostUsers"], false], [[...WEB_SC, "procMount"], "Unmasked"]),
    control: "procMount_restricted",
    field: "containers[web].securityContext.procMount",
  },
];

/** A near miss for every control: the setting it governs, at a value it allows. */
const PASSES: readonly Pass[] = [
  {
    name: "hostProcess false everywhere",
    spec: variant([[...POD_SC, "windowsOptions", "hostProcess"], false], [[...WEB_SC, "windowsOptions"], {}]),
    control: "windowsHostProcess",
  },
  {
    name: "host namespaces set false",
    spec: variant([["hostNetwork"], false], [["hostPID"], false], [["hostIPC"], false]),
    control: "hostNamespaces",
  },
  {
    name: "privileged false",
    spec: variant([[...WEB_SC, "privileged"], false]),
    control: "privileged",
  },
  {
    name: "default-set capabilities added at baseline",
    spec: variant([
      [...WEB_SC, "capabilities", "add"],
      ["CHOWN", "SETUID", "NET_BIND_SERVICE"],
    ]),
    control: "capabilities_baseline",
  },
  { name: "no hostPath volume", spec: locked(), control: "hostPathVolumes" },
  {
    name: "hostPort 0",
    spec: variant([[...WEB, "ports", 0, "hostPort"], 0]),
    control: "hostPorts",
  },
  {
    name: "probe and hook hosts left empty",
    spec: variant([[...WEB, "readinessProbe", "httpGet", "host"], ""]),
    control: "hostProbesAndHostLifecycle",
  },
  {
    name: "AppArmor RuntimeDefault, Localhost and the confined annotations",
    spec: variant(
      [[...POD_SC, "appArmorProfile"], { type: "RuntimeDefault" }],
      [[...WEB_SC, "appArmorProfile"], { type: "Localhost", localhostProfile: "k8s-web" }],
    ),
    metadata: {
      annotations: {
        [ANNOTATION]: "localhost/k8s-web",
        "container.apparmor.security.beta.kubernetes.io/migrate": "runtime/default",
      },
    },
    control: "appArmorProfile",
  },
  {
    name: "SELinux container types and a level",
    spec: variant(
      [[...POD_SC, "seLinuxOptions"], { type: "container_t", level: "s0:c10,c20" }],
      [[...INIT_SC, "seLinuxOptions"], { type: "container_engine_t" }],
    ),
    control: "seLinuxOptions",
  },
  {
    name: "procMount Default",
    spec: variant([[...WEB_SC, "procMount"], "Default"]),
    control: "procMount",
  },
  {
    name: "procMount Default in a user-namespaced pod",
    spec: variant([["hostUsers"], false], [[...WEB_SC, "procMount"], "Default"]),
    control: "procMount_restricted",
  },
  {
    name: "seccomp Localhost on a container",
    spec: variant([[...WEB_SC, "seccompProfile"], { type: "Localhost", localhostProfile: "web.json" }]),
    control: "seccompProfile_baseline",
  },
  {
    name: "safe sysctls",
    spec: variant([
      [...POD_SC, "sysctls"],
      [
        { name: "net.ipv4.ip_local_port_range", value: "1024 65000" },
        { name: "net.ipv4.tcp_notsent_lowat", value: "16384" },
      ],
    ]),
    control: "sysctls",
  },
  { name: "every allowed volume source", spec: locked(), control: "restrictedVolumes" },
  {
    name: "allowPrivilegeEscalation false",
    spec: locked(),
    control: "allowPrivilegeEscalation",
  },
  {
    name: "runAsNonRoot only on every container",
    spec: variant(
      [[...POD_SC, "runAsNonRoot"], undefined],
      [[...WEB_SC, "runAsNonRoot"], true],
      [[...INIT_SC, "runAsNonRoot"], true],
      [[...SHELL_SC, "runAsNonRoot"], true],
    ),
    control: "runAsNonRoot",
  },
  {
    name: "a non-zero runAsUser on a container",
    spec: variant([[...WEB_SC, "runAsUser"], 1001]),
    control: "runAsUser",
  },
  {
    name: "seccomp only on every container",
    spec: variant(
      [[...POD_SC, "seccompProfile"], undefined],
      [[...WEB_SC, "seccompProfile"], { type: "RuntimeDefault" }],
      [[...INIT_SC, "seccompProfile"], { type: "RuntimeDefault" }],
      [[...SHELL_SC, "seccompProfile"], { type: "Localhost", localhostProfile: "shell.json" }],
    ),
    control: "seccompProfile_restricted",
  },
  {
    name: "drop ALL and add back NET_BIND_SERVICE",
    spec: variant([[...WEB_SC, "capabilities"], { drop: ["ALL"], add: ["NET_BIND_SERVICE"] }]),
    control: "capabilities_restricted",
  },
];

const levelOf = (control: string): PodSecurityLevel =>
  POD_SECURITY_CONTROLS.find((c) => c.id === control)?.level ?? "restricted";

function found(c: Case, level: PodSecurityLevel) {
  return checkPodSecurity(c.spec, level, c.metadata, c.version === undefined ? {} : { version: c.version });
}

describe("the control list", () => {
  it("is upstream's: every check of baseline and restricted, with the minor it starts at", () => {
    // k8s.io/pod-security-admission policy/check_*.go (checked against its main branch, 2026-07).
    expect(POD_SECURITY_CONTROLS.map((c) => [c.id, c.level, c.since, c.overrides ?? null])).toEqual([
      ["windowsHostProcess", "baseline", 0, null],
      ["hostNamespaces", "baseline", 0, null],
      ["privileged", "baseline", 0, null],
      ["capabilities_baseline", "baseline", 0, null],
      ["hostPathVolumes", "baseline", 0, null],
      ["hostPorts", "baseline", 0, null],
      ["hostProbesAndHostLifecycle", "baseline", 34, null],
      ["appArmorProfile", "baseline", 0, null],
      ["seLinuxOptions", "baseline", 0, null],
      ["procMount", "baseline", 0, null],
      ["seccompProfile_baseline", "baseline", 0, null],
      ["sysctls", "baseline", 0, null],
      ["restrictedVolumes", "restricted", 0, "hostPathVolumes"],
      ["allowPrivilegeEscalation", "restricted", 8, null],
      ["runAsNonRoot", "restricted", 0, null],
      ["runAsUser", "restricted", 23, null],
      ["seccompProfile_restricted", "restricted", 19, "seccompProfile_baseline"],
      ["capabilities_restricted", "restricted", 22, "capabilities_baseline"],
      ["procMount_restricted", "restricted", 35, "procMount"],
    ]);
    expect(NEWEST_CHECKS_MINOR).toBe(37);
  });

  it("restricted replaces the baseline checks it tightens", () => {
    expect(controlIdsFor("baseline")).toHaveLength(12);
    expect(controlIdsFor("restricted")).toEqual(
      expect.not.arrayContaining([
        "hostPathVolumes",
        "seccompProfile_baseline",
        "capabilities_baseline",
        "procMount",
      ]),
    );
    expect(controlIdsFor("restricted")).toHaveLength(15);
    expect(controlIdsFor("privileged")).toEqual([]);
    expect(controlIdsFor("baseline", 33)).not.toContain("hostProbesAndHostLifecycle");
    expect(controlIdsFor("restricted", 34)).toContain("procMount");
  });

  it("every control has a violating and a passing case below", () => {
    const ids = POD_SECURITY_CONTROLS.map((c) => c.id);
    expect(new Set([...BASELINE, ...RESTRICTED].map((c) => c.control))).toEqual(new Set(ids));
    expect(new Set(PASSES.map((c) => c.control))).toEqual(new Set(ids));
  });
});

describe("checkPodSecurity", () => {
  it("admits the locked pod at every level", () => {
    for (const level of ["privileged", "baseline", "restricted"] as const) {
      expect(checkPodSecurity(locked(), level)).toEqual([]);
    }
  });

  it.each(BASELINE)("baseline refuses $name", (c) => {
    const got = found(c, "baseline");
    expect(got.map((f) => [f.control, f.field])).toEqual([[c.control, c.field]]);
    expect(got[0]).toMatchObject({ level: "baseline", controlName: expect.any(String) as string });
  });

  it.each(BASELINE)("restricted refuses $name too (through its stricter check where it has one)", (c) => {
    const replacement = POD_SECURITY_CONTROLS.find((r) => r.overrides === c.control)?.id;
    expect(found(c, "restricted").map((f) => f.control)).toEqual([replacement ?? c.control]);
  });

  it.each(RESTRICTED)("restricted refuses $name; baseline admits it", (c) => {
    expect(found(c, "restricted").map((f) => [f.control, f.field])).toEqual([[c.control, c.field]]);
    expect(found(c, "baseline")).toEqual([]);
  });

  it.each(PASSES)("$name passes $control", (c) => {
    expect(found(c, levelOf(c.control))).toEqual([]);
    expect(found(c, "restricted").map((f) => f.control)).not.toContain(c.control);
  });

  it("privileged admits every violation", () => {
    for (const c of [...BASELINE, ...RESTRICTED]) expect(found(c, "privileged")).toEqual([]);
  });

  it("ties container findings to the container, pod-level ones to none", () => {
    const spec = variant([["hostNetwork"], true], [[...INIT_SC, "runAsUser"], 0]);
    const got = checkPodSecurity(spec, "restricted");
    expect(got.map((f) => [f.control, f.container?.kind ?? null, f.container?.name ?? null])).toEqual([
      ["hostNamespaces", null, null],
      ["runAsUser", "initContainer", "migrate"],
    ]);
  });

  it("ties an AppArmor annotation to the container it names", () => {
    const [f] = checkPodSecurity(locked(), "baseline", { annotations: { [ANNOTATION]: "unconfined" } });
    expect(f?.container?.name).toBe("web");
  });

  it("lists the capabilities a capabilities finding objects to", () => {
    const spec = variant([
      [...WEB_SC, "capabilities", "add"],
      ["NET_BIND_SERVICE", "NET_ADMIN", "NET_RAW"],
    ]);
    expect(checkPodSecurity(spec, "restricted").map((f) => f.capabilities)).toEqual([
      ["NET_ADMIN", "NET_RAW"],
    ]);
  });

  it("says what to set", () => {
    const spec = variant(
      [[...WEB_SC, "allowPrivilegeEscalation"], undefined],
      [[...WEB_SC, "procMount"], "Unmasked"],
    );
    expect(checkPodSecurity(spec, "restricted").map((f) => f.message)).toEqual([
      "container web must set securityContext.allowPrivilegeEscalation=false",
      'container web must not set securityContext.procMount to "Unmasked" (Default or unset)',
    ]);
  });
});

describe("checkPodSecurity: versions", () => {
  it("defaults to the newest checks", () => {
    const spec = variant([[...WEB, "livenessProbe"], { httpGet: { host: "10.0.0.9", port: 80 } }]);
    expect(checkPodSecurity(spec, "baseline").map((f) => f.control)).toEqual(["hostProbesAndHostLifecycle"]);
    expect(checkPodSecurity(spec, "baseline", undefined, { version: 33 })).toEqual([]);
  });

  it("waives root and /proc for user-namespaced pods from 1.35 only as upstream does", () => {
    const spec = variant(
      [["hostUsers"], false],
      [[...POD_SC, "runAsUser"], 0],
      [[...POD_SC, "runAsNonRoot"], false],
      [[...WEB_SC, "procMount"], "Unmasked"],
    );
    expect(checkPodSecurity(spec, "baseline")).toEqual([]);
    expect(checkPodSecurity(spec, "restricted").map((f) => f.control)).toEqual(["procMount_restricted"]);
    expect(checkPodSecurity(spec, "restricted", undefined, { version: 34 }).map((f) => f.control)).toEqual([
      "procMount",
      "runAsNonRoot",
      "runAsUser",
    ]);
  });

  it("skips restricted's Linux-only controls for Windows pods from 1.25", () => {
    const spec = variant(
      [["os"], { name: "windows" }],
      [[...POD_SC, "seccompProfile"], undefined],
      [[...WEB_SC], { runAsNonRoot: true }],
    );
    expect(checkPodSecurity(spec, "restricted")).toEqual([]);
    expect(checkPodSecurity(spec, "restricted", undefined, { version: 24 }).map((f) => f.control)).toEqual([
      "allowPrivilegeEscalation",
      "seccompProfile_restricted",
      "seccompProfile_restricted",
      "seccompProfile_restricted",
      "capabilities_restricted",
    ]);
  });

  it("reads seccomp from annotations before 1.19", () => {
    const metadata = { annotations: { "seccomp.security.alpha.kubernetes.io/pod": "unconfined" } };
    expect(checkPodSecurity(locked(), "baseline", metadata, { version: 18 }).map((f) => f.field)).toEqual([
      "metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]",
    ]);
    expect(checkPodSecurity(locked(), "baseline", metadata)).toEqual([]);
  });
});

describe("checkPodSecurity: preview unknowns", () => {
  it("does not judge a field that is not known yet", () => {
    const spec = variant(
      [[...WEB_SC, "allowPrivilegeEscalation"], UNKNOWN],
      [[...INIT_SC], UNKNOWN],
      [[...SHELL_SC, "capabilities", "drop"], [UNKNOWN]],
      [[...POD_SC, "sysctls"], [{ name: UNKNOWN, value: "1" }]],
    );
    expect(checkPodSecurity(spec, "restricted")).toEqual([]);
  });

  it("does not judge a container that falls back to an unknown pod-level setting", () => {
    const spec = variant([[...POD_SC, "runAsNonRoot"], UNKNOWN], [[...POD_SC, "seccompProfile"], UNKNOWN]);
    expect(checkPodSecurity(spec, "restricted")).toEqual([]);
  });

  it("still judges the known fields beside an unknown one", () => {
    const spec = variant([[...INIT_SC], UNKNOWN], [[...WEB_SC, "privileged"], true]);
    expect(checkPodSecurity(spec, "restricted").map((f) => f.field)).toEqual([
      "containers[web].securityContext.privileged",
    ]);
  });
});

describe("paths in the object", () => {
  const spec = variant([[...WEB, "ports", 0, "hostPort"], 80]);
  const [port] = checkPodSecurity(spec, "baseline");
  const [annotation] = checkPodSecurity(locked(), "baseline", {
    annotations: { [ANNOTATION]: "unconfined" },
  });

  it("concrete, with indices, under the pod spec's path", () => {
    expect(podSecurityPath(["spec", "template", "spec"], port!)).toEqual([
      "spec",
      "template",
      "spec",
      "containers",
      0,
      "ports",
      0,
      "hostPort",
    ]);
    expect(podSecurityPath(["spec", "template", "spec"], annotation!)).toEqual([
      "spec",
      "template",
      "metadata",
      "annotations",
      ANNOTATION,
    ]);
    expect(podSecurityPath(["spec"], annotation!)).toEqual(["metadata", "annotations", ANNOTATION]);
  });

  it("named, as the preflight reports them", () => {
    expect(podSecurityField("spec.jobTemplate.spec.template.spec", port!)).toBe(
      "spec.jobTemplate.spec.template.spec.containers[web].ports[http].hostPort",
    );
    expect(podSecurityField("spec.template.spec", annotation!)).toBe(
      `spec.template.metadata.annotations[${ANNOTATION}]`,
    );
    expect(podSecurityField("spec", annotation!)).toBe(`metadata.annotations[${ANNOTATION}]`);
  });
});
