/**
 * Reference integrity over the whole plan, offline: what a pod template, a Service, a monitor, a
 * mesh route, an autoscaler trigger or a custom resource names must exist in the plan (or be
 * provided by the cluster, by a documented list) and, where the engine orders things, be created
 * before it is needed. Every finding names both ends and the field; all are errors, because the
 * real `pulumi up` would either fail (no CRD, no namespace) or leave a workload that never starts
 * or is never reached (a missing Secret, a selector that selects nothing, a port nobody listens on).
 */
import { containersOf, podSpecsOf, type ContainerRef, type PodSpecRef } from "../../policies/lib/k8s";
import { arr, obj, str, type Obj } from "../../policies/lib/values";
import {
  BUILTIN_CLUSTER_SCOPED_KINDS,
  describe,
  groupOf,
  identity,
  type Finding,
  type PlanObject,
} from "./objects";

// ------------------------------------------------------------------------------------------------
// Cluster-provided objects, namespaces and CRDs
// ------------------------------------------------------------------------------------------------

/** An object the cluster (or a controller the plan installs) creates by itself. */
export interface ClusterProvidedObject {
  readonly kind: string;
  readonly name: string;
  /**
   * Where it exists: `all` namespaces, `istio-injected` namespaces (only when Istio is in the
   * plan), or the listed namespaces.
   */
  readonly namespaces: "all" | "istio-injected" | readonly string[];
  /** Why the cluster provides it (documentation, shown nowhere else). */
  readonly why: string;
}

/**
 * Objects a pod template may reference without the plan creating them.
 *
 * - ServiceAccount `default`: kube-controller-manager's serviceaccount controller creates it in
 *   every namespace as soon as the namespace exists; it is what a pod without
 *   `serviceAccountName` runs as.
 * - ConfigMap `kube-root-ca.crt`: kube-controller-manager's root-ca-cert-publisher writes the
 *   cluster CA into every namespace (Kubernetes 1.20+); the projected service-account token volume
 *   and charts that mount the CA explicitly read it.
 * - ConfigMap `istio-ca-root-cert`: istiod's namespace controller writes the mesh root CA into the
 *   namespaces it watches; injected sidecars (and workloads that mount it explicitly, such as
 *   gateways) read it. Counted only when Istio (istiod) is in the plan and the namespace is
 *   sidecar-injected (`istio-injection=enabled` or an `istio.io/rev` label on the Namespace), or
 *   is istiod's own namespace: elsewhere nothing promises it exists.
 */
export const CLUSTER_PROVIDED_OBJECTS: readonly ClusterProvidedObject[] = [
  {
    kind: "ServiceAccount",
    name: "default",
    namespaces: "all",
    why: "created in every namespace by the serviceaccount controller",
  },
  {
    kind: "ConfigMap",
    name: "kube-root-ca.crt",
    namespaces: "all",
    why: "published into every namespace by the root-ca-cert-publisher controller",
  },
  {
    kind: "ConfigMap",
    name: "istio-ca-root-cert",
    namespaces: "istio-injected",
    why: "written by istiod into the namespaces whose sidecars need the mesh root CA",
  },
];

/** Namespaces every cluster has (created by the API server itself). */
export const CLUSTER_NAMESPACES: readonly string[] = [
  "default",
  "kube-system",
  "kube-public",
  "kube-node-lease",
];

/** A CRD the cluster ships with. */
export interface ClusterCrd {
  readonly group: string;
  readonly kind: string;
  readonly why: string;
}

/** A bare (conformant, upstream) cluster ships no CRDs. */
export const BARE_CLUSTER_CRDS: readonly ClusterCrd[] = [];

/**
 * CRDs K3s installs itself (docs.k3s.io, "Helm" add-on and packaged components): the embedded
 * helm-controller's HelmChart and HelmChartConfig (helm.cattle.io/v1) and the deploy controller's
 * Addon plus the etcd snapshot controller's ETCDSnapshotFile (k3s.cattle.io/v1). Traefik's CRDs
 * (traefik-crd) are deliberately not listed: that packaged component is disabled with
 * `--disable traefik`, so a plan must not rely on it.
 */
export const K3S_CRDS: readonly ClusterCrd[] = [
  { group: "helm.cattle.io", kind: "HelmChart", why: "K3s embedded helm-controller" },
  { group: "helm.cattle.io", kind: "HelmChartConfig", why: "K3s embedded helm-controller" },
  { group: "k3s.cattle.io", kind: "Addon", why: "K3s deploy controller (auto-deployed manifests)" },
  { group: "k3s.cattle.io", kind: "ETCDSnapshotFile", why: "K3s etcd snapshot controller" },
];

/**
 * A Helm hook the chart renders but helm.v4.Chart drops (it does not run hooks). `kind`, `name`
 * and `namespace` are the hook object itself; `creates` the objects it would have created (a
 * cert-generation Job's Secret, say). A hook that is itself a Secret or ConfigMap stands for
 * itself.
 */
export interface DroppedHook {
  readonly urn: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
  readonly creates?: readonly { readonly kind: string; readonly name: string; readonly namespace?: string }[];
}

export interface ReferenceOptions {
  /** Objects the cluster provides beyond {@link CLUSTER_PROVIDED_OBJECTS}. */
  readonly clusterProvided?: readonly ClusterProvidedObject[];
  /** CRDs the cluster ships ({@link BARE_CLUSTER_CRDS} unless given, e.g. {@link K3S_CRDS}). */
  readonly clusterCrds?: readonly ClusterCrd[];
  /** Namespaces the cluster has beyond {@link CLUSTER_NAMESPACES}. */
  readonly clusterNamespaces?: readonly string[];
  /** Helm hooks helm.v4.Chart dropped, to explain why what they create is missing. */
  readonly droppedHooks?: readonly DroppedHook[];
}

// ------------------------------------------------------------------------------------------------
// Dependency reachability
// ------------------------------------------------------------------------------------------------

/** A component registration (not a Kubernetes object), for nesting of components. */
export interface ComponentNode {
  readonly urn: string;
  readonly parent?: string;
}

/**
 * What each object waits for, transitively: its `dependsOn`, and the parent it is registered
 * under when that parent is itself an object (a child registers after its custom parent is
 * created). Waiting for a component (a Chart, any URN that is not an object) means waiting for all
 * the objects under it, recursively through `parent` (and through `components`, when nested
 * components are given). Returns a memoised lookup: URN of an object → URNs of the objects it
 * waits for (never itself unless there is a cycle).
 */
export function dependsTransitively(
  objects: readonly PlanObject[],
  components: readonly ComponentNode[] = [],
): (urn: string) => ReadonlySet<string> {
  const byUrn = new Map(objects.map((o) => [o.urn, o]));
  const parentOf = new Map<string, string>();
  for (const c of components) if (c.parent) parentOf.set(c.urn, c.parent);
  for (const o of objects) if (o.parent) parentOf.set(o.urn, o.parent);
  const under = new Map<string, string[]>();
  for (const o of objects) {
    const seen = new Set<string>();
    for (let p = parentOf.get(o.urn); p !== undefined && !seen.has(p); p = parentOf.get(p)) {
      seen.add(p);
      let list = under.get(p);
      if (!list) under.set(p, (list = []));
      list.push(o.urn);
    }
  }
  const direct = (o: PlanObject): string[] => {
    const out = [...o.dependsOn];
    if (o.parent && byUrn.has(o.parent)) out.push(o.parent);
    return out;
  };
  const cache = new Map<string, ReadonlySet<string>>();
  return (urn) => {
    const hit = cache.get(urn);
    if (hit) return hit;
    const reached = new Set<string>();
    const visited = new Set<string>();
    const start = byUrn.get(urn);
    const stack = start ? direct(start) : [];
    while (stack.length > 0) {
      const u = stack.pop()!;
      if (visited.has(u)) continue;
      visited.add(u);
      const o = byUrn.get(u);
      if (o) {
        reached.add(u);
        stack.push(...direct(o));
      } else {
        stack.push(...(under.get(u) ?? []));
      }
    }
    cache.set(urn, reached);
    return reached;
  };
}

// ------------------------------------------------------------------------------------------------
// The plan, indexed
// ------------------------------------------------------------------------------------------------

const BUILTIN_GROUPS: ReadonlySet<string> = new Set([
  "",
  "apps",
  "batch",
  "autoscaling",
  "policy",
  "extensions",
  "networking.k8s.io",
  "rbac.authorization.k8s.io",
  "storage.k8s.io",
  "apiextensions.k8s.io",
  "admissionregistration.k8s.io",
  "scheduling.k8s.io",
  "coordination.k8s.io",
  "node.k8s.io",
  "discovery.k8s.io",
  "certificates.k8s.io",
  "events.k8s.io",
  "flowcontrol.apiserver.k8s.io",
  "apiregistration.k8s.io",
  "authentication.k8s.io",
  "authorization.k8s.io",
  "resource.k8s.io",
  "internal.apiserver.k8s.io",
  "storagemigration.k8s.io",
]);

interface Svc {
  readonly o: PlanObject;
  readonly ns: string;
  readonly name: string;
  readonly ports: readonly { name?: string; port?: number; targetPort?: string | number }[];
  readonly selector?: Readonly<Record<string, string>>;
  readonly headless: boolean;
  /** Created by a controller (Flagger) rather than the plan itself. */
  readonly generatedBy?: string;
  /** Labels of a Service the plan does not hold itself (what monitors select it by). */
  readonly labels?: Readonly<Record<string, string>>;
}

interface Pod {
  readonly o: PlanObject;
  readonly ns: string;
  readonly pod: PodSpecRef;
  readonly labels: Readonly<Record<string, string>>;
}

/** A Pulumi type token `policies/lib/k8s` understands, from the object's own apiVersion/kind. */
function typeTokenOf(o: PlanObject): string {
  const { apiVersion, kind } = identity(o.object);
  if (!apiVersion || !kind) return o.type;
  return `kubernetes:${apiVersion.includes("/") ? apiVersion : `core/${apiVersion}`}:${kind}`;
}

function labelsOf(md: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(obj(md)?.["labels"]) ?? {})) {
    const s = str(v);
    if (s !== undefined) out[k] = s;
  }
  return out;
}

function stringMap(v: unknown): Record<string, string> | undefined {
  const o = obj(v);
  if (!o) return undefined;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(o)) if (typeof x === "string") out[k] = x;
  return out;
}

/** Matches a label selector (`matchLabels`/`matchExpressions`, or a plain map as Services use). */
function selects(selector: Obj, labels: Readonly<Record<string, string>>, plain = false): boolean {
  const ml = plain ? selector : (obj(selector["matchLabels"]) ?? {});
  for (const [k, v] of Object.entries(ml)) if (labels[k] !== v) return false;
  if (plain) return true;
  for (const e of arr(selector["matchExpressions"])) {
    const ex = obj(e) ?? {};
    const key = str(ex["key"]) ?? "";
    const values = arr(ex["values"]).map(String);
    const has = key in labels;
    switch (str(ex["operator"])) {
      case "In":
        if (!has || !values.includes(labels[key]!)) return false;
        break;
      case "NotIn":
        if (has && values.includes(labels[key]!)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
    }
  }
  return true;
}

const fmtSel = (s: Readonly<Record<string, unknown>>): string =>
  Object.entries(s)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(",");

class Plan {
  readonly byKey = new Map<string, PlanObject[]>();
  readonly pods: Pod[] = [];
  readonly services = new Map<string, Svc>();
  readonly namespaces = new Map<string, PlanObject>();
  readonly crds: { o: PlanObject; group: string; kind: string; scope: string }[] = [];
  readonly serviceEntryHosts = new Set<string>();
  readonly istio: { present: boolean; namespaces: Set<string> } = { present: false, namespaces: new Set() };
  private readonly clusterScopedCrs = new Set<string>();

  constructor(readonly objects: readonly PlanObject[]) {
    for (const o of objects) {
      const { apiVersion, kind, name } = identity(o.object);
      if (kind === "CustomResourceDefinition") {
        const spec = obj(o.object["spec"]) ?? {};
        const group = str(spec["group"]) ?? "";
        const crKind = str(obj(spec["names"])?.["kind"]) ?? "";
        const scope = str(spec["scope"]) ?? "Namespaced";
        this.crds.push({ o, group, kind: crKind, scope });
        if (scope === "Cluster") this.clusterScopedCrs.add(`${group}/${crKind}`);
      }
      if (kind === "Namespace" && groupOf(apiVersion) === "") this.namespaces.set(name, o);
    }
    for (const o of objects) {
      const { kind, name } = identity(o.object);
      const ns = this.nsOf(o);
      const key = `${kind}/${ns ?? ""}/${name}`;
      let list = this.byKey.get(key);
      if (!list) this.byKey.set(key, (list = []));
      list.push(o);
      for (const pod of podSpecsOf(typeTokenOf(o), o.object)) {
        this.pods.push({ o, ns: ns ?? "default", pod, labels: labelsOf(pod.metadata) });
      }
      const spec = obj(o.object["spec"]) ?? {};
      if (kind === "Service" && ns) {
        const ports = arr(spec["ports"]).map((p) => {
          const po = obj(p) ?? {};
          const tp = po["targetPort"];
          return {
            ...(str(po["name"]) ? { name: str(po["name"]) } : {}),
            ...(typeof po["port"] === "number" ? { port: po["port"] } : {}),
            ...(typeof tp === "number" || typeof tp === "string" ? { targetPort: tp } : {}),
          };
        });
        const selector = stringMap(spec["selector"]);
        this.services.set(`${ns}/${name}`, {
          o,
          ns,
          name,
          ports,
          ...(selector && Object.keys(selector).length > 0 ? { selector } : {}),
          headless: spec["clusterIP"] === "None",
        });
      }
      if (kind === "ServiceEntry") {
        for (const h of arr(spec["hosts"])) if (typeof h === "string") this.serviceEntryHosts.add(h);
      }
      if ((kind === "Deployment" && name.startsWith("istiod")) || o.chart?.ref.startsWith("istiod-")) {
        this.istio.present = true;
        if (ns) this.istio.namespaces.add(ns);
      }
    }
    for (const [name, nsObj] of this.namespaces) {
      const labels = labelsOf(nsObj.object["metadata"]);
      if (labels["istio-injection"] === "enabled" || labels["istio.io/rev"]) this.istio.namespaces.add(name);
    }
    this.addRuntimeObjects();
    this.addInjectedSidecars();
    // Flagger creates `<service>`, `<service>-primary` and `<service>-canary` for each Canary.
    for (const o of objects) {
      const { apiVersion, kind, name } = identity(o.object);
      if (kind !== "Canary" || groupOf(apiVersion) !== "flagger.app") continue;
      const ns = this.nsOf(o) ?? "default";
      const spec = obj(o.object["spec"]) ?? {};
      const service = obj(spec["service"]) ?? {};
      const base = str(service["name"]) ?? str(obj(spec["targetRef"])?.["name"]) ?? name;
      const port = typeof service["port"] === "number" ? service["port"] : undefined;
      const portName = str(service["portName"]) ?? "http";
      for (const svcName of [base, `${base}-primary`, `${base}-canary`]) {
        if (this.services.has(`${ns}/${svcName}`)) continue;
        this.services.set(`${ns}/${svcName}`, {
          o,
          ns,
          name: svcName,
          ports: port === undefined ? [] : [{ name: portName, port }],
          headless: false,
          generatedBy: describe(o.object),
        });
      }
    }
  }

  /**
   * Pods and Services that exist at run time without being objects of the plan, so selectors and
   * ports aimed at them resolve:
   * - prometheus-operator runs a StatefulSet per Prometheus and Alertmanager resource, its pods
   *   labelled `app.kubernetes.io/name=<prometheus|alertmanager>`, `operator.prometheus.io/name`,
   *   `<kind>=<name>` plus the resource's podMetadata labels, serving `web` (9090 / 9093);
   * - with `--kubelet-service=<ns>/<name>` it maintains that Service for the kubelets
   *   (`app.kubernetes.io/name=kubelet`, `k8s-app=kubelet`; https-metrics 10250);
   * - every cluster has Service default/kubernetes (`component=apiserver`, `provider=kubernetes`;
   *   https 443) and CoreDNS pods in kube-system labelled `k8s-app=kube-dns` (dns 53, metrics 9153);
   * - Istio's injector adds `security.istio.io/tlsMode=istio` and the `istio-proxy` container
   *   (`http-envoy-prom` 15090) to every pod of an injected namespace.
   */
  private addRuntimeObjects(): void {
    const synthetic = (
      o: PlanObject,
      ns: string,
      labels: Record<string, string>,
      ports: [string, number][],
    ) =>
      this.pods.push({
        o,
        ns,
        pod: {
          kind: "Pod",
          path: ["spec"],
          spec: {
            containers: [
              { name: "main", ports: ports.map(([name, containerPort]) => ({ name, containerPort })) },
            ],
          },
          metadata: { labels },
        } as unknown as PodSpecRef,
        labels,
      });
    for (const o of this.objects) {
      const { apiVersion, kind, name } = identity(o.object);
      const spec = obj(o.object["spec"]) ?? {};
      if (
        groupOf(apiVersion) === "monitoring.coreos.com" &&
        (kind === "Prometheus" || kind === "Alertmanager")
      ) {
        const app = kind.toLowerCase();
        synthetic(
          o,
          this.nsOf(o) ?? "default",
          {
            ...(stringMap(obj(spec["podMetadata"])?.["labels"]) ?? {}),
            "app.kubernetes.io/name": app,
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/managed-by": "prometheus-operator",
            "operator.prometheus.io/name": name,
            [app]: name,
          },
          kind === "Prometheus"
            ? [
                ["web", 9090],
                ["reloader-web", 8080],
              ]
            : [
                ["web", 9093],
                ["reloader-web", 8080],
              ],
        );
      }
      for (const pod of podSpecsOf(typeTokenOf(o), o.object))
        for (const c of containersOf(pod))
          for (const a of arr(c.container["args"])) {
            const m = typeof a === "string" ? /^--kubelet-service=([^/]+)\/(.+)$/.exec(a) : null;
            if (!m || this.services.has(`${m[1]}/${m[2]}`)) continue;
            this.services.set(`${m[1]!}/${m[2]!}`, {
              o,
              ns: m[1]!,
              name: m[2]!,
              ports: [
                { name: "https-metrics", port: 10250 },
                { name: "http-metrics", port: 10255 },
                { name: "cadvisor", port: 4194 },
              ],
              headless: true,
              generatedBy: describe(o.object),
              labels: { "app.kubernetes.io/name": "kubelet", "k8s-app": "kubelet" },
            });
          }
    }
    const anchor = this.objects[0];
    if (!anchor) return;
    if (!this.services.has("default/kubernetes"))
      this.services.set("default/kubernetes", {
        o: anchor,
        ns: "default",
        name: "kubernetes",
        ports: [{ name: "https", port: 443 }],
        headless: false,
        generatedBy: "the API server",
        labels: { component: "apiserver", provider: "kubernetes" },
      });
    synthetic(anchor, "kube-system", { "k8s-app": "kube-dns" }, [
      ["dns", 53],
      ["dns-tcp", 53],
      ["metrics", 9153],
    ]);
  }

  /** Labels and containers Istio's injector adds to the pods of injected namespaces. */
  private addInjectedSidecars(): void {
    if (!this.istio.present) return;
    for (let i = 0; i < this.pods.length; i++) {
      const p = this.pods[i]!;
      const injected =
        p.labels["sidecar.istio.io/inject"] !== "false" &&
        (this.istio.namespaces.has(p.ns) || p.labels["sidecar.istio.io/inject"] === "true");
      if (!injected) continue;
      const spec = p.pod.spec as Record<string, unknown>;
      const containers = [
        ...arr(spec["containers"]),
        { name: "istio-proxy", ports: [{ name: "http-envoy-prom", containerPort: 15090 }] },
      ];
      this.pods[i] = {
        ...p,
        labels: { ...p.labels, "security.istio.io/tlsMode": "istio" },
        pod: { ...p.pod, spec: { ...spec, containers } },
      };
    }
  }

  /** Namespace of an object: its own, `default` for namespaced kinds without one, none if cluster-scoped. */
  nsOf(o: PlanObject): string | undefined {
    const id = identity(o.object);
    if (id.namespace) return id.namespace;
    if (BUILTIN_CLUSTER_SCOPED_KINDS.has(id.kind) && BUILTIN_GROUPS.has(groupOf(id.apiVersion)))
      return undefined;
    if (this.clusterScopedCrs.has(`${groupOf(id.apiVersion)}/${id.kind}`)) return undefined;
    return "default";
  }

  find(kind: string, ns: string | undefined, name: string): PlanObject | undefined {
    return this.byKey.get(`${kind}/${ns ?? ""}/${name}`)?.[0];
  }

  podsIn(ns: string): Pod[] {
    return this.pods.filter((p) => p.ns === ns);
  }

  knownNamespace(ns: string, clusterNamespaces: ReadonlySet<string>): boolean {
    return this.namespaces.has(ns) || clusterNamespaces.has(ns);
  }
}

// ------------------------------------------------------------------------------------------------
// Findings
// ------------------------------------------------------------------------------------------------

const finding = (o: PlanObject, field: string, target: string, message: string): Finding => ({
  check: "reference",
  severity: "error",
  urn: o.urn,
  field,
  target,
  message,
});

/** Reference-integrity findings over the whole plan (see the module comment). */
export function referenceFindings(objects: readonly PlanObject[], options: ReferenceOptions = {}): Finding[] {
  const plan = new Plan(objects);
  const waitsFor = dependsTransitively(objects);
  const clusterNamespaces = new Set([...CLUSTER_NAMESPACES, ...(options.clusterNamespaces ?? [])]);
  const out: Finding[] = [];
  podTemplateReferences(plan, options, out);
  serviceSelectors(plan, out);
  portReferences(plan, clusterNamespaces, out);
  crdReferences(plan, waitsFor, options.clusterCrds ?? BARE_CLUSTER_CRDS, out);
  namespaceReferences(plan, waitsFor, clusterNamespaces, out);
  return out;
}

// --- pod templates ------------------------------------------------------------------------------

interface PodRef {
  readonly kind: "Secret" | "ConfigMap" | "PersistentVolumeClaim" | "ServiceAccount";
  readonly name: string;
  readonly field: string;
  readonly optional: boolean;
}

const CONTAINER_FIELD = {
  container: "containers",
  initContainer: "initContainers",
  ephemeralContainer: "ephemeralContainers",
};

function containerPath(pod: PodSpecRef, c: ContainerRef): string {
  return `${pod.path.join(".")}.${CONTAINER_FIELD[c.kind]}[${c.name}]`;
}

function refsOfPod(pod: PodSpecRef): PodRef[] {
  const refs: PodRef[] = [];
  const base = pod.path.join(".");
  const add = (kind: PodRef["kind"], name: unknown, field: string, optional: unknown) => {
    const n = str(name);
    if (n) refs.push({ kind, name: n, field, optional: optional === true });
  };
  for (const v of arr(pod.spec["volumes"])) {
    const vol = obj(v) ?? {};
    const at = `${base}.volumes[${str(vol["name"]) ?? "?"}]`;
    const secret = obj(vol["secret"]);
    if (secret) add("Secret", secret["secretName"], `${at}.secret.secretName`, secret["optional"]);
    const cm = obj(vol["configMap"]);
    if (cm) add("ConfigMap", cm["name"], `${at}.configMap.name`, cm["optional"]);
    const pvc = obj(vol["persistentVolumeClaim"]);
    if (pvc) add("PersistentVolumeClaim", pvc["claimName"], `${at}.persistentVolumeClaim.claimName`, false);
    arr(obj(vol["projected"])?.["sources"]).forEach((s, i) => {
      const src = obj(s) ?? {};
      const ps = obj(src["secret"]);
      if (ps) add("Secret", ps["name"], `${at}.projected.sources[${i}].secret.name`, ps["optional"]);
      const pc = obj(src["configMap"]);
      if (pc) add("ConfigMap", pc["name"], `${at}.projected.sources[${i}].configMap.name`, pc["optional"]);
    });
  }
  for (const c of containersOf(pod)) {
    const at = containerPath(pod, c);
    for (const e of arr(c.container["env"])) {
      const env = obj(e) ?? {};
      const vf = obj(env["valueFrom"]);
      const envAt = `${at}.env[${str(env["name"]) ?? "?"}].valueFrom`;
      const sk = obj(vf?.["secretKeyRef"]);
      if (sk) add("Secret", sk["name"], `${envAt}.secretKeyRef`, sk["optional"]);
      const ck = obj(vf?.["configMapKeyRef"]);
      if (ck) add("ConfigMap", ck["name"], `${envAt}.configMapKeyRef`, ck["optional"]);
    }
    arr(c.container["envFrom"]).forEach((e, i) => {
      const ef = obj(e) ?? {};
      const sr = obj(ef["secretRef"]);
      if (sr) add("Secret", sr["name"], `${at}.envFrom[${i}].secretRef`, sr["optional"]);
      const cr = obj(ef["configMapRef"]);
      if (cr) add("ConfigMap", cr["name"], `${at}.envFrom[${i}].configMapRef`, cr["optional"]);
    });
  }
  arr(pod.spec["imagePullSecrets"]).forEach((s, i) =>
    add("Secret", obj(s)?.["name"], `${base}.imagePullSecrets[${i}]`, false),
  );
  const sa = pod.spec["serviceAccountName"] ?? pod.spec["serviceAccount"];
  add(
    "ServiceAccount",
    sa ?? "default",
    `${base}.${pod.spec["serviceAccountName"] === undefined && sa !== undefined ? "serviceAccount" : "serviceAccountName"}`,
    false,
  );
  return refs;
}

/** Secrets other kinds make: cert-manager Certificates, external-secrets, sealed-secrets. */
function secretProducers(plan: Plan): Map<string, PlanObject> {
  const out = new Map<string, PlanObject>();
  for (const o of plan.objects) {
    const { apiVersion, kind, name } = identity(o.object);
    const group = groupOf(apiVersion);
    const ns = plan.nsOf(o) ?? "default";
    const spec = obj(o.object["spec"]) ?? {};
    let secret: string | undefined;
    if (group === "cert-manager.io" && kind === "Certificate") secret = str(spec["secretName"]);
    else if (group === "external-secrets.io" && kind === "ExternalSecret")
      secret = str(obj(spec["target"])?.["name"]) ?? name;
    else if (group === "bitnami.com" && kind === "SealedSecret") secret = name;
    if (secret) out.set(`${ns}/${secret}`, o);
    // Operators that generate and rotate their own serving certificates at start (KEDA's
    // `--enable-cert-rotation` with `--cert-secret-name`): pods mounting it wait for it, then start.
    for (const pod of podSpecsOf(typeTokenOf(o), o.object))
      for (const c of containersOf(pod)) {
        const args = arr(c.container["args"]).filter((a): a is string => typeof a === "string");
        if (!args.includes("--enable-cert-rotation=true")) continue;
        const named = args.find((a) => a.startsWith("--cert-secret-name="));
        if (named) out.set(`${ns}/${named.slice("--cert-secret-name=".length)}`, o);
      }
  }
  return out;
}

function clusterProvides(
  plan: Plan,
  provided: readonly ClusterProvidedObject[],
  kind: string,
  ns: string,
  name: string,
  podLabels: Readonly<Record<string, string>>,
): boolean {
  return provided.some((p) => {
    if (p.kind !== kind || p.name !== name) return false;
    if (p.namespaces === "all") return true;
    if (p.namespaces === "istio-injected")
      return (
        plan.istio.present &&
        (plan.istio.namespaces.has(ns) || podLabels["sidecar.istio.io/inject"] === "true")
      );
    return p.namespaces.includes(ns);
  });
}

function podTemplateReferences(plan: Plan, options: ReferenceOptions, out: Finding[]): void {
  const provided = [...CLUSTER_PROVIDED_OBJECTS, ...(options.clusterProvided ?? [])];
  const produced = secretProducers(plan);
  const hooks = options.droppedHooks ?? [];
  for (const { o, ns, pod, labels } of plan.pods) {
    const { kind: ownerKind, name: ownerName } = identity(o.object);
    const claimTemplates =
      ownerKind === "StatefulSet"
        ? arr(obj(o.object["spec"])?.["volumeClaimTemplates"])
            .map((t) => str(obj(obj(t)?.["metadata"])?.["name"]))
            .filter((n): n is string => n !== undefined)
        : [];
    for (const ref of refsOfPod(pod)) {
      if (ref.optional) continue;
      if (plan.find(ref.kind, ns, ref.name)) continue;
      if (ref.kind === "Secret" && produced.has(`${ns}/${ref.name}`)) continue;
      if (clusterProvides(plan, provided, ref.kind, ns, ref.name, labels)) continue;
      if (
        ref.kind === "PersistentVolumeClaim" &&
        claimTemplates.some((t) => new RegExp(`^${escapeRe(`${t}-${ownerName}-`)}\\d+$`).test(ref.name))
      )
        continue;
      const target = `${ref.kind} ${ns}/${ref.name}`;
      const hook = hooks.find(
        (h) =>
          (h.kind === ref.kind && h.name === ref.name && (h.namespace ?? ns) === ns) ||
          (h.creates ?? []).some(
            (c) => c.kind === ref.kind && c.name === ref.name && (c.namespace ?? ns) === ns,
          ),
      );
      const why = hook
        ? `is created only by the Helm hook ${hook.kind} ${hook.namespace ? `${hook.namespace}/` : ""}${hook.name} that helm.v4.Chart drops`
        : "is not in the plan and not provided by the cluster";
      out.push(
        finding(
          o,
          ref.field,
          target,
          `${describe(o.object)} references ${target} at ${ref.field}, which ${why}; create it in the same namespace` +
            (ref.kind === "Secret" || ref.kind === "ConfigMap" ? " or mark the reference optional" : "") +
            ".",
        ),
      );
    }
    // Volume mounts name a pod volume or (StatefulSets) a volumeClaimTemplate.
    const volumes = new Set(arr(pod.spec["volumes"]).map((v) => str(obj(v)?.["name"])));
    for (const c of containersOf(pod)) {
      for (const m of arr(c.container["volumeMounts"])) {
        const name = str(obj(m)?.["name"]);
        if (!name || volumes.has(name) || claimTemplates.includes(name)) continue;
        const field = `${containerPath(pod, c)}.volumeMounts[${name}]`;
        out.push(
          finding(
            o,
            field,
            `volume ${name}`,
            `${describe(o.object)} mounts volume "${name}" at ${field}, but the pod declares no such volume` +
              (ownerKind === "StatefulSet" ? " and no volumeClaimTemplate has that name." : "."),
          ),
        );
      }
    }
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// --- Service selectors --------------------------------------------------------------------------

function podsSelectedBy(plan: Plan, svc: Svc): Pod[] {
  const sel = svc.selector;
  if (!sel) return [];
  return plan.podsIn(svc.ns).filter((p) => selects(sel, p.labels, true));
}

function containerPorts(pod: PodSpecRef): { name?: string; containerPort?: number }[] {
  const out: { name?: string; containerPort?: number }[] = [];
  for (const c of containersOf(pod, ["container", "initContainer"])) {
    if (c.kind === "initContainer" && c.container["restartPolicy"] !== "Always") continue;
    for (const p of arr(c.container["ports"])) {
      const po = obj(p) ?? {};
      out.push({
        ...(str(po["name"]) ? { name: str(po["name"]) } : {}),
        ...(typeof po["containerPort"] === "number" ? { containerPort: po["containerPort"] } : {}),
      });
    }
  }
  return out;
}

function serviceSelectors(plan: Plan, out: Finding[]): void {
  for (const svc of plan.services.values()) {
    if (!svc.selector || svc.generatedBy) continue;
    const pods = podsSelectedBy(plan, svc);
    if (pods.length === 0) {
      const target = `pods labelled ${fmtSel(svc.selector)} in ${svc.ns}`;
      out.push(
        finding(
          svc.o,
          "spec.selector",
          target,
          `${describe(svc.o.object)} selects ${target}, but no workload in the plan has a pod template with those labels.`,
        ),
      );
      continue;
    }
    svc.ports.forEach((p, i) => {
      if (typeof p.targetPort !== "string") return;
      const tp = p.targetPort;
      if (pods.some((pod) => containerPorts(pod.pod).some((c) => c.name === tp))) return;
      const field = `spec.ports[${p.name ?? i}].targetPort`;
      const target = pods.map((pod) => describe(pod.o.object)).join(", ");
      out.push(
        finding(
          svc.o,
          field,
          target,
          `${describe(svc.o.object)} ${field} names port "${tp}", but no container of ${target} declares a port with that name.`,
        ),
      );
    });
  }
}

// --- ports named by monitors, triggers, routes, canaries, probes ---------------------------------

export interface HostRef {
  /** `<ns>/<svc>` the host resolves to. */
  readonly key: string;
  /** Per-pod form (`<pod>.<svc>.<ns>.svc`): the pod's hostname. */
  readonly pod?: string;
}

/**
 * Resolves a host to a Service: `<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc`,
 * `<svc>.<ns>.svc.cluster.local` and the headless per-pod forms `<pod>.<svc>.<ns>[.svc[.cluster.local]]`.
 * Undefined for hosts that do not look in-cluster (a dotted name whose namespace part the plan
 * does not know is an external host).
 */
export function resolveServiceHost(
  host: string,
  fromNs: string,
  isNamespace: (ns: string) => boolean,
): HostRef | undefined {
  let labels = host.toLowerCase().replace(/\.$/, "").split(".");
  if (labels.length === 0 || labels.some((l) => l === "" || l === "*")) return undefined;
  if (labels.slice(-2).join(".") === "cluster.local") {
    labels = labels.slice(0, -2);
    if (labels[labels.length - 1] !== "svc") return undefined;
  }
  if (labels[labels.length - 1] === "svc") {
    labels = labels.slice(0, -1);
    if (labels.length === 2) return { key: `${labels[1]}/${labels[0]}` };
    if (labels.length === 3) return { key: `${labels[2]}/${labels[1]}`, pod: labels[0]! };
    return undefined;
  }
  if (labels.length === 1) return labels[0] === "localhost" ? undefined : { key: `${fromNs}/${labels[0]}` };
  if (labels.length === 2 && isNamespace(labels[1]!)) return { key: `${labels[1]}/${labels[0]}` };
  if (labels.length === 3 && isNamespace(labels[2]!))
    return { key: `${labels[2]}/${labels[1]}`, pod: labels[0]! };
  return undefined;
}

/** `host[:port]` out of a URL or `host:port` string (comma-separated lists give several). */
function endpointsIn(value: string): { host: string; port: number }[] {
  const out: { host: string; port: number }[] = [];
  for (const part of value.split(",")) {
    const m =
      /^\s*(?:([a-z][a-z0-9+.-]*):\/\/)?(?:[^@/\s]*@)?([A-Za-z0-9.-]+)(?::(\d+))?(?:[/?#]\S*)?\s*$/.exec(
        part,
      );
    if (!m) continue;
    const [, scheme, host, port] = m;
    if (port) out.push({ host: host!, port: Number(port) });
    else if (scheme === "http" || scheme === "ws") out.push({ host: host!, port: 80 });
    else if (scheme === "https" || scheme === "wss") out.push({ host: host!, port: 443 });
  }
  return out;
}

function portReferences(plan: Plan, clusterNamespaces: ReadonlySet<string>, out: Finding[]): void {
  const isNs = (ns: string) => plan.knownNamespace(ns, clusterNamespaces);

  /** Checks `host:port` (numbers) against the Service the host resolves to. */
  const checkHostPort = (
    o: PlanObject,
    field: string,
    host: string,
    port: number | undefined,
    fromNs: string,
  ) => {
    if (plan.serviceEntryHosts.has(host)) return;
    const ref = resolveServiceHost(host, fromNs, isNs);
    if (!ref) return;
    const svc = plan.services.get(ref.key);
    const target = `Service ${ref.key}`;
    if (!svc) {
      out.push(
        finding(
          o,
          field,
          target,
          `${describe(o.object)} ${field} names host "${host}", which resolves to ${target}, not in the plan.`,
        ),
      );
      return;
    }
    if (ref.pod && !svc.headless) {
      out.push(
        finding(
          o,
          field,
          target,
          `${describe(o.object)} ${field} names the per-pod host "${host}", but ${target} is not headless (clusterIP: None), so no per-pod DNS record exists.`,
        ),
      );
      return;
    }
    if (port === undefined) return;
    if (svc.ports.some((p) => p.port === port)) return;
    if (svc.headless) {
      // Clients of a headless Service reach the pods directly: a pod port counts.
      if (svc.ports.some((p) => p.targetPort === port)) return;
      if (podsSelectedBy(plan, svc).some((p) => containerPorts(p.pod).some((c) => c.containerPort === port)))
        return;
    }
    const declared = svc.ports.map((p) => p.port).join(", ") || "none";
    out.push(
      finding(
        o,
        field,
        target,
        `${describe(o.object)} ${field} names port ${port} on ${target}, which declares port(s) ${declared}.`,
      ),
    );
  };

  const namespacesFor = (sel: Obj | undefined, own: string): ((ns: string) => boolean) => {
    if (sel?.["any"] === true) return () => true;
    const names = arr(sel?.["matchNames"]).map(String);
    return names.length > 0 ? (ns) => names.includes(ns) : (ns) => ns === own;
  };

  for (const o of plan.objects) {
    const { apiVersion, kind } = identity(o.object);
    const group = groupOf(apiVersion);
    const ns = plan.nsOf(o) ?? "default";
    const spec = obj(o.object["spec"]) ?? {};

    if (group === "monitoring.coreos.com" && kind === "ServiceMonitor") {
      const sel = obj(spec["selector"]) ?? {};
      const inNs = namespacesFor(obj(spec["namespaceSelector"]), ns);
      const svcs = [...plan.services.values()].filter(
        (s) =>
          (s.labels ? true : !s.generatedBy) &&
          inNs(s.ns) &&
          selects(sel, s.labels ?? labelsOf(s.o.object["metadata"])),
      );
      if (svcs.length === 0) {
        const target = `Services labelled ${fmtSel(obj(sel["matchLabels"]) ?? {})}`;
        out.push(
          finding(
            o,
            "spec.selector",
            target,
            `${describe(o.object)} selects ${target}, but no Service in the plan matches.`,
          ),
        );
        continue;
      }
      arr(spec["endpoints"]).forEach((e, i) => {
        const ep = obj(e) ?? {};
        const port = str(ep["port"]);
        const targets = svcs.map((s) => describe(s.o.object)).join(", ");
        if (port && !svcs.some((s) => s.ports.some((p) => p.name === port))) {
          const field = `spec.endpoints[${i}].port`;
          out.push(
            finding(
              o,
              field,
              targets,
              `${describe(o.object)} ${field} names Service port "${port}", but ${targets} declare(s) no port with that name (a Service that selects pods only exposes the ports it declares).`,
            ),
          );
        }
        const tp = ep["targetPort"];
        if (typeof tp === "string") {
          const pods = svcs.flatMap((s) => podsSelectedBy(plan, s));
          if (!pods.some((p) => containerPorts(p.pod).some((c) => c.name === tp))) {
            const field = `spec.endpoints[${i}].targetPort`;
            out.push(
              finding(
                o,
                field,
                targets,
                `${describe(o.object)} ${field} names container port "${tp}", but no pod behind ${targets} declares it.`,
              ),
            );
          }
        }
      });
    }

    if (group === "monitoring.coreos.com" && kind === "PodMonitor") {
      const sel = obj(spec["selector"]) ?? {};
      const inNs = namespacesFor(obj(spec["namespaceSelector"]), ns);
      const pods = plan.pods.filter((p) => inNs(p.ns) && selects(sel, p.labels));
      if (pods.length === 0) {
        const target = `pods labelled ${fmtSel(obj(sel["matchLabels"]) ?? {})}`;
        out.push(
          finding(
            o,
            "spec.selector",
            target,
            `${describe(o.object)} selects ${target}, but no pod template in the plan matches.`,
          ),
        );
        continue;
      }
      arr(spec["podMetricsEndpoints"]).forEach((e, i) => {
        const port = str(obj(e)?.["port"]);
        if (!port || pods.some((p) => containerPorts(p.pod).some((c) => c.name === port))) return;
        const field = `spec.podMetricsEndpoints[${i}].port`;
        const targets = pods.map((p) => describe(p.o.object)).join(", ");
        out.push(
          finding(
            o,
            field,
            targets,
            `${describe(o.object)} ${field} names container port "${port}", but no container of ${targets} declares a port with that name.`,
          ),
        );
      });
    }

    if (group === "keda.sh" && (kind === "ScaledObject" || kind === "ScaledJob")) {
      arr(spec["triggers"]).forEach((t, i) => {
        const md = obj(obj(t)?.["metadata"]) ?? {};
        for (const [key, v] of Object.entries(md)) {
          if (typeof v !== "string") continue;
          for (const ep of endpointsIn(v)) {
            checkHostPort(o, `spec.triggers[${i}].metadata.${key}`, ep.host, ep.port, ns);
          }
        }
      });
    }

    if (group === "networking.istio.io" && kind === "VirtualService") {
      for (const proto of ["http", "tcp", "tls"]) {
        arr(spec[proto]).forEach((r, i) => {
          const route = obj(r) ?? {};
          const dests: [string, Obj][] = arr(route["route"]).map((d, j) => [
            `spec.${proto}[${i}].route[${j}].destination`,
            obj(obj(d)?.["destination"]) ?? {},
          ]);
          const mirror = obj(route["mirror"]);
          if (mirror) dests.push([`spec.${proto}[${i}].mirror`, mirror]);
          for (const [field, d] of dests) {
            const host = str(d["host"]);
            const num = obj(d["port"])?.["number"];
            if (host) checkHostPort(o, field, host, typeof num === "number" ? num : undefined, ns);
          }
        });
      }
    }

    if (group === "networking.istio.io" && kind === "DestinationRule") {
      const host = str(spec["host"]);
      if (host) {
        checkHostPort(o, "spec.host", host, undefined, ns);
        const policies: [string, Obj | undefined][] = [["spec.trafficPolicy", obj(spec["trafficPolicy"])]];
        arr(spec["subsets"]).forEach((s, i) =>
          policies.push([`spec.subsets[${i}].trafficPolicy`, obj(obj(s)?.["trafficPolicy"])]),
        );
        for (const [at, policy] of policies) {
          arr(policy?.["portLevelSettings"]).forEach((p, i) => {
            const num = obj(obj(p)?.["port"])?.["number"];
            if (typeof num === "number")
              checkHostPort(o, `${at}.portLevelSettings[${i}].port`, host, num, ns);
          });
        }
      }
    }

    if (group === "flagger.app" && kind === "Canary") {
      const ref = obj(spec["targetRef"]) ?? {};
      const refKind = str(ref["kind"]) ?? "Deployment";
      const refName = str(ref["name"]);
      const targetObj = refName ? plan.find(refKind, ns, refName) : undefined;
      if (refName && !targetObj) {
        const target = `${refKind} ${ns}/${refName}`;
        out.push(
          finding(
            o,
            "spec.targetRef",
            target,
            `${describe(o.object)} spec.targetRef names ${target}, which is not in the plan.`,
          ),
        );
      }
      const tp = obj(spec["service"])?.["targetPort"];
      if (targetObj && typeof tp === "string") {
        const pods = plan.pods.filter((p) => p.o === targetObj);
        if (!pods.some((p) => containerPorts(p.pod).some((c) => c.name === tp))) {
          const target = describe(targetObj.object);
          out.push(
            finding(
              o,
              "spec.service.targetPort",
              target,
              `${describe(o.object)} spec.service.targetPort names port "${tp}", but no container of ${target} declares it.`,
            ),
          );
        }
      }
    }
  }

  // Probes name a port of their own container.
  for (const { o, pod } of plan.pods) {
    for (const c of containersOf(pod)) {
      const ports = arr(c.container["ports"]).map((p) => obj(p) ?? {});
      for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
        const pr = obj(c.container[probe]);
        if (!pr) continue;
        for (const handler of ["httpGet", "tcpSocket", "grpc"]) {
          const port = obj(pr[handler])?.["port"];
          if (port === undefined) continue;
          const field = `${containerPath(pod, c)}.${probe}.${handler}.port`;
          // The kubelet probes a number on the pod IP whatever `ports` declares (that list is
          // informational); only a port *name* must be declared on the container.
          const ok = typeof port !== "string" || /^\d+$/.test(port) || ports.some((p) => p["name"] === port);
          if (ok) continue;
          const declared = ports
            .map(
              (p) =>
                `${str(p["name"]) ?? ""}:${typeof p["containerPort"] === "number" ? p["containerPort"] : ""}`,
            )
            .join(", ");
          out.push(
            finding(
              o,
              field,
              `container ${c.name}`,
              `${describe(o.object)} ${field} probes port ${JSON.stringify(port)}, but container "${c.name}" declares only ${declared || "no ports"}.`,
            ),
          );
        }
      }
    }
  }
}

// --- CRDs ----------------------------------------------------------------------------------------

function crdReferences(
  plan: Plan,
  waitsFor: (urn: string) => ReadonlySet<string>,
  clusterCrds: readonly ClusterCrd[],
  out: Finding[],
): void {
  for (const o of plan.objects) {
    const { apiVersion, kind } = identity(o.object);
    const group = groupOf(apiVersion);
    if (!apiVersion || !kind || BUILTIN_GROUPS.has(group)) continue;
    if (clusterCrds.some((c) => c.group === group && c.kind === kind)) continue;
    const crds = plan.crds.filter((c) => c.group === group && c.kind === kind);
    const deps = waitsFor(o.urn);
    if (crds.some((c) => deps.has(c.o.urn) || (o.chart && c.o.chart?.urn === o.chart.urn))) continue;
    const field = "apiVersion";
    if (crds.length > 0) {
      const crd = crds[0]!;
      const target = describe(crd.o.object);
      out.push(
        finding(
          o,
          field,
          target,
          `${describe(o.object)} (${group}/${kind}) needs ${target}, which the plan installs` +
            (crd.o.chart ? ` in chart ${crd.o.chart.ref}` : "") +
            ` but ${describe(o.object)} does not depend on it (nor is it rendered by the same chart); add dependsOn on it.`,
        ),
      );
    } else {
      const target = `CustomResourceDefinition for ${kind}.${group}`;
      out.push(
        finding(
          o,
          field,
          target,
          `${describe(o.object)} needs the ${target}, which nothing in the plan installs and the cluster does not ship.`,
        ),
      );
    }
  }
}

// --- namespaces ----------------------------------------------------------------------------------

function namespaceReferences(
  plan: Plan,
  waitsFor: (urn: string) => ReadonlySet<string>,
  clusterNamespaces: ReadonlySet<string>,
  out: Finding[],
): void {
  for (const o of plan.objects) {
    const { kind, namespace } = identity(o.object);
    if (!namespace || kind === "Namespace" || clusterNamespaces.has(namespace)) continue;
    const nsObj = plan.namespaces.get(namespace);
    if (nsObj && (waitsFor(o.urn).has(nsObj.urn) || (o.chart && nsObj.chart?.urn === o.chart.urn))) continue;
    const target = `Namespace ${namespace}`;
    out.push(
      finding(
        o,
        "metadata.namespace",
        target,
        nsObj
          ? `${describe(o.object)} is in ${target}, which the plan creates but ${describe(o.object)} does not depend on (directly, through its parent or its chart); add dependsOn on it.`
          : `${describe(o.object)} is in ${target}, which the plan never creates and the cluster does not provide.`,
      ),
    );
  }
}
