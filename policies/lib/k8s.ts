/**
 * Where Kubernetes things live in resource inputs: kinds from Pulumi type tokens (typed resources,
 * `CustomResource`s and the CLI's `kubernetes:<group/version>:<Kind>` records), pod specs in every
 * workload kind, containers, namespaces, Helm chart values and the images they reference.
 */
import { arr, obj, str, type Obj } from "./values";

export interface KindInfo {
  /** API group ("" for core). */
  readonly group: string;
  readonly version: string;
  readonly kind: string;
}

const CR_TYPE = "kubernetes:apiextensions.k8s.io:CustomResource";
const kindCache = new Map<string, KindInfo | null>();

/**
 * Kubernetes kind of a resource: from the type token (`kubernetes:apps/v1:Deployment`), or for
 * `CustomResource`s (and anything else under `kubernetes:`) from the `apiVersion`/`kind` inputs.
 * Undefined for non-Kubernetes resources, Helm charts and providers.
 */
export function kindOf(type: string, props: Obj): KindInfo | undefined {
  if (!type.startsWith("kubernetes:")) return undefined;
  if (type === CR_TYPE || type.startsWith("kubernetes:yaml") || type.startsWith("kubernetes:helm.sh")) {
    if (type !== CR_TYPE) return undefined;
    const apiVersion = str(props["apiVersion"]);
    const kind = str(props["kind"]);
    if (!apiVersion || !kind) return undefined;
    const slash = apiVersion.lastIndexOf("/");
    return {
      group: slash < 0 ? "" : apiVersion.slice(0, slash),
      version: apiVersion.slice(slash + 1),
      kind,
    };
  }
  let info = kindCache.get(type);
  if (info === undefined) {
    const m = /^kubernetes:([^:]+):([A-Za-z0-9]+)$/.exec(type);
    if (m) {
      const gv = m[1]!;
      const slash = gv.lastIndexOf("/");
      const group = slash < 0 ? "" : gv.slice(0, slash);
      info = { group: group === "core" ? "" : group, version: gv.slice(slash + 1), kind: m[2]! };
    } else info = null;
    kindCache.set(type, info);
  }
  return info ?? undefined;
}

/** True when the resource is `kind` in `group` (any version). */
export function isKind(type: string, props: Obj, group: string, kind: string): boolean {
  const k = kindOf(type, props);
  return k !== undefined && k.kind === kind && k.group === group;
}

export function metadataOf(props: Obj): Obj {
  return obj(props["metadata"]) ?? {};
}

/** Namespace of a namespaced object (`default` when unset); a Namespace's own name for Namespaces. */
export function namespaceOf(type: string, props: Obj): string | undefined {
  const md = metadataOf(props);
  const k = kindOf(type, props);
  if (k?.kind === "Namespace" && k.group === "") return str(md["name"]);
  if (isHelmChart(type)) return str(props["namespace"]) ?? "default";
  if (!k) return undefined;
  return str(md["namespace"]) ?? "default";
}

export function objectNameOf(props: Obj): string | undefined {
  return str(metadataOf(props)["name"]);
}

export type WorkloadKind =
  | "Pod"
  | "Deployment"
  | "StatefulSet"
  | "DaemonSet"
  | "ReplicaSet"
  | "ReplicationController"
  | "Job"
  | "CronJob";

export interface PodSpecRef {
  readonly kind: WorkloadKind;
  /** Path of the pod spec inside the inputs. */
  readonly path: readonly string[];
  readonly spec: Obj;
  /** Pod (template) metadata. */
  readonly metadata: Obj;
}

const TEMPLATE_KINDS: Record<string, WorkloadKind> = {
  Deployment: "Deployment",
  StatefulSet: "StatefulSet",
  DaemonSet: "DaemonSet",
  ReplicaSet: "ReplicaSet",
  ReplicationController: "ReplicationController",
  Job: "Job",
};

const podCache = new WeakMap<Obj, { type: string; pods: readonly PodSpecRef[] }>();
const NO_PODS: readonly PodSpecRef[] = Object.freeze([]);

/**
 * Pod specs of a workload resource: Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
 * CronJob (memoised per inputs object: every workload policy asks for the same resource).
 */
export function podSpecsOf(type: string, props: Obj): readonly PodSpecRef[] {
  const hit = podCache.get(props);
  if (hit && hit.type === type) return hit.pods;
  const found = findPodSpecs(type, props);
  const pods = found.length === 0 ? NO_PODS : found;
  podCache.set(props, { type, pods });
  return pods;
}

function findPodSpecs(type: string, props: Obj): PodSpecRef[] {
  const k = kindOf(type, props);
  if (!k) return [];
  const spec = obj(props["spec"]);
  if (!spec) return [];
  if (k.kind === "Pod" && k.group === "") {
    return [{ kind: "Pod", path: ["spec"], spec, metadata: metadataOf(props) }];
  }
  if (k.kind === "CronJob" && k.group === "batch") {
    const template = obj(obj(obj(spec["jobTemplate"])?.["spec"])?.["template"]);
    const podSpec = obj(template?.["spec"]);
    return podSpec
      ? [
          {
            kind: "CronJob",
            path: ["spec", "jobTemplate", "spec", "template", "spec"],
            spec: podSpec,
            metadata: obj(template?.["metadata"]) ?? {},
          },
        ]
      : [];
  }
  const wk = TEMPLATE_KINDS[k.kind];
  if (!wk || (k.group !== "apps" && k.group !== "batch" && k.group !== "" && k.group !== "extensions"))
    return [];
  const template = obj(spec["template"]);
  const podSpec = obj(template?.["spec"]);
  return podSpec
    ? [
        {
          kind: wk,
          path: ["spec", "template", "spec"],
          spec: podSpec,
          metadata: obj(template?.["metadata"]) ?? {},
        },
      ]
    : [];
}

export type ContainerKind = "container" | "initContainer" | "ephemeralContainer";

export interface ContainerRef {
  readonly kind: ContainerKind;
  readonly index: number;
  readonly name: string;
  /** Path of the container inside the inputs. */
  readonly path: readonly (string | number)[];
  readonly container: Obj;
}

const CONTAINER_FIELDS: readonly [string, ContainerKind][] = [
  ["containers", "container"],
  ["initContainers", "initContainer"],
  ["ephemeralContainers", "ephemeralContainer"],
];

/** Containers of a pod spec (all kinds unless `kinds` narrows them). */
const ALL_KINDS: readonly ContainerKind[] = ["container", "initContainer", "ephemeralContainer"];
const containerCache = new WeakMap<PodSpecRef, readonly ContainerRef[]>();

export function containersOf(
  pod: PodSpecRef,
  kinds: readonly ContainerKind[] = ALL_KINDS,
): readonly ContainerRef[] {
  let all = containerCache.get(pod);
  if (!all) {
    all = collectContainers(pod);
    containerCache.set(pod, all);
  }
  return kinds === ALL_KINDS || kinds.length === 3 ? all : all.filter((c) => kinds.includes(c.kind));
}

function collectContainers(pod: PodSpecRef): ContainerRef[] {
  const out: ContainerRef[] = [];
  for (const [field, kind] of CONTAINER_FIELDS) {
    arr(pod.spec[field]).forEach((c, index) => {
      const container = obj(c);
      if (container) {
        out.push({
          kind,
          index,
          name: str(container["name"]) ?? `#${index}`,
          path: [...pod.path, field, index],
          container,
        });
      }
    });
  }
  return out;
}

/** An init container that keeps running beside the app (native sidecar). */
export function isNativeSidecar(c: ContainerRef): boolean {
  return c.kind === "initContainer" && c.container["restartPolicy"] === "Always";
}

/**
 * A container the mesh's injector fills at admission: Istio's gateway chart renders `istio-proxy`
 * with `image: auto` in a pod marked for injection, and the webhook replaces the image and adds
 * istiod's probes. Like every injected sidecar, its image and probes are the injector's, not the
 * manifest's; its securityContext stays (the injector keeps the pod's own fields).
 */
export function isInjectionPlaceholder(c: ContainerRef, pod: PodSpecRef): boolean {
  if (c.container["image"] !== "auto" || c.name !== "istio-proxy") return false;
  const labels = obj(pod.metadata["labels"]) ?? {};
  const annotations = obj(pod.metadata["annotations"]) ?? {};
  return labels["sidecar.istio.io/inject"] === "true" || annotations["sidecar.istio.io/inject"] === "true";
}

/** True for pods that are meant to keep running (not Jobs, CronJobs or run-to-completion Pods). */
export function isLongRunning(pod: PodSpecRef): boolean {
  if (pod.kind === "Job" || pod.kind === "CronJob") return false;
  if (pod.kind === "Pod") {
    const rp = str(pod.spec["restartPolicy"]);
    return rp === undefined || rp === "Always";
  }
  return true;
}

/** Helm charts and releases registered in the program. */
export function isHelmChart(type: string): boolean {
  return type.startsWith("kubernetes:helm.sh/");
}

/** Name of the chart (last path segment of `chart`, without an OCI/repo prefix). */
export function helmChartName(props: Obj): string | undefined {
  const chart = str(props["chart"]);
  if (!chart) return undefined;
  const last = chart.replace(/\/+$/, "").split("/").pop() ?? chart;
  return last.replace(/-\d+\.\d+\.\d+.*\.tgz$/, "");
}

/** Inline values of a Helm chart/release. */
export function helmValuesOf(type: string, props: Obj): Obj | undefined {
  return isHelmChart(type) ? obj(props["values"]) : undefined;
}

export interface ImageRefLocation {
  readonly image: string;
  readonly path: readonly (string | number)[];
  /** Where the reference comes from, for messages. */
  readonly where: string;
  /** Helm values that leave the tag to the chart (its appVersion): not a floating tag. */
  readonly chartDefaultTag?: boolean;
}

/** Image references of a resource: containers of every pod spec, and image objects in Helm values. */
export function imagesOf(type: string, props: Obj): ImageRefLocation[] {
  const out: ImageRefLocation[] = [];
  for (const pod of podSpecsOf(type, props)) {
    for (const c of containersOf(pod)) {
      const image = c.container["image"];
      if (typeof image === "string" && !isInjectionPlaceholder(c, pod))
        out.push({ image, path: [...c.path, "image"], where: `${c.kind} "${c.name}"` });
    }
  }
  const values = helmValuesOf(type, props);
  if (values) collectHelmImages(values, [], out, 0);
  return out;
}

/**
 * Helm values images: objects with a `repository` (optionally `registry`, `tag`, `digest`), as
 * most charts use, or `sha` for the digest (prometheus-community's charts and Grafana's: bare hex
 * their templates print after `@sha256:`, or kube-state-metrics' whole `sha256:...`). A chart
 * default (no tag in values) is the chart's business and not reported.
 */
function collectHelmImages(v: Obj, path: (string | number)[], out: ImageRefLocation[], depth: number): void {
  if (depth > 12) return;
  const repo = v["repository"];
  if (
    typeof repo === "string" &&
    ["tag", "digest", "sha", "registry"].some((k) => typeof v[k] === "string")
  ) {
    if (
      [repo, v["tag"], v["digest"], v["sha"], v["registry"]].some(
        (x) => typeof x === "string" && str(x) === undefined,
      )
    ) {
      return; // unknown during preview
    }
    const registry = str(v["registry"]);
    const tag = str(v["tag"]);
    const sha = str(v["sha"]);
    const digest =
      str(v["digest"]) || (sha ? (sha.startsWith("sha256:") ? sha : `sha256:${sha}`) : undefined);
    let image = registry ? `${registry}/${repo}` : repo;
    if (tag) image += `:${tag}`;
    if (digest) image += `@${digest}`;
    out.push({
      image,
      path,
      where: `Helm value ${path.join(".") || "(root)"}`,
      chartDefaultTag: !tag && !digest,
    });
    return;
  }
  for (const [key, child] of Object.entries(v)) {
    if (Array.isArray(child)) {
      child.forEach((item, i) => {
        const o = obj(item);
        if (o) collectHelmImages(o, [...path, key, i], out, depth + 1);
      });
    } else {
      const o = obj(child);
      if (o) collectHelmImages(o, [...path, key], out, depth + 1);
    }
  }
}
