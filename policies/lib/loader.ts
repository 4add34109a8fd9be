/**
 * Loads plain Kubernetes YAML (multi-document, `List`s) and Dockerfiles into runner records, so
 * the same rules gate manifests and images outside Pulumi (`npm run policy -- check`), and the
 * preflight and bench can reuse it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { isMap, isSeq, LineCounter, parseAllDocuments, visit, type Node as YamlNode } from "yaml";
import type { ResourceRecord } from "./runner";
import { obj, str } from "./values";

export interface SourceInfo {
  readonly file: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  /** 1-based line the object (or the Dockerfile's first line) starts on. */
  readonly line?: number;
  /** 1-based line of a field path inside the object (`spec.template.spec.containers[0].image`). */
  readonly lineOf?: (fieldPath: string) => number | undefined;
}

/** A file or folder the loader did not check, and why: skipped on purpose, or refused as bad input. */
export interface LoadNote {
  readonly path: string;
  readonly status: "skipped" | "refused";
  readonly reason: string;
}

export interface LoadedRecords {
  readonly records: ResourceRecord[];
  /** Where each record (by urn) came from. */
  readonly sources: Map<string, SourceInfo>;
  /** Files and folders not checked (`loadPaths` only). */
  readonly notes: LoadNote[];
}

export class LoadError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = "LoadError";
  }
}

const DOCKERFILE_RE = /(^|[\\/])(Dockerfile(\.[\w.-]+)?|[\w.-]+\.Dockerfile)$/i;
const YAML_RE = /\.ya?ml$/i;

export const isDockerfilePath = (p: string): boolean => DOCKERFILE_RE.test(p);

/** More aliases than any real manifest uses; beyond it `yaml` refuses the document (alias bombs). */
export const MAX_ALIAS_COUNT = 1000;

/**
 * Files under `p` the CLI checks (directories recursively). Folders named `node_modules` or starting
 * with a dot are skipped while walking, each with a note; a path given explicitly is always read.
 */
export function collectFiles(p: string, notes: LoadNote[] = []): string[] {
  let st;
  try {
    st = statSync(p);
  } catch (e) {
    throw new LoadError(p, `cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (!st.isDirectory()) return [p];
  const out: string[] = [];
  const entries = readdirSync(p, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    const child = path.join(p, e.name);
    if (e.isDirectory()) {
      if (e.name.startsWith(".")) notes.push({ path: child, status: "skipped", reason: "dot folder" });
      else if (e.name === "node_modules")
        notes.push({ path: child, status: "skipped", reason: "node_modules" });
      else out.push(...collectFiles(child, notes));
    } else if (YAML_RE.test(e.name) || DOCKERFILE_RE.test(e.name)) {
      out.push(child);
    }
  }
  return out;
}

/** Helm's own objects and functions in an action: `{{ .Values.x }}`, `{{- include "…" . | nindent 4 }}`. */
const HELM_ACTION_RE =
  /\{\{-?[^}]*?(?:\.(?:Values|Release|Chart|Capabilities|Files|Template)\b|\b(?:include|tpl|toYaml|toJson|nindent|required|lookup)\b)/;

/**
 * Whether a file is a Helm template rather than a manifest: it sits in a chart's templates/ folder,
 * or is no YAML until rendered, or an action using Helm's objects or functions stands as a key or
 * a plain or quoted value. A rendered manifest may carry templates in block scalars (Istio's
 * injector ConfigMap) and Go-template text in strings (`{{ $labels.instance }}`): those are data.
 */
export function isHelmTemplate(text: string, file: string): boolean {
  if (!text.includes("{{")) return false;
  const dir = path.dirname(file);
  if (path.basename(dir) === "templates" && existsSync(path.join(dir, "..", "Chart.yaml"))) return true;
  if (!HELM_ACTION_RE.test(text)) return false;
  const docs = parseAllDocuments(text, { merge: true });
  if (docs.some((d) => d.errors.length > 0)) return true;
  let helm = false;
  for (const doc of docs)
    visit(doc, {
      Scalar: (_key, node) => {
        const block = node.type === "BLOCK_LITERAL" || node.type === "BLOCK_FOLDED";
        if (!block && typeof node.value === "string" && HELM_ACTION_RE.test(node.value)) {
          helm = true;
          return visit.BREAK;
        }
        return undefined;
      },
    });
  return helm;
}

/** Pulumi type token of a Kubernetes object (`kubernetes:apps/v1:Deployment`, core as `core/v1`). */
export function typeOfManifest(apiVersion: string, kind: string): string {
  const gv = apiVersion.includes("/") ? apiVersion : `core/${apiVersion}`;
  return `kubernetes:${gv}:${kind}`;
}

/** `spec.containers[0].image` → ["spec", "containers", 0, "image"]. */
const pathSegments = (p: string): (string | number)[] =>
  [...p.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : m[1]!));

interface Found {
  readonly value: Record<string, unknown>;
  readonly node: YamlNode | undefined;
  /** apiVersion and kind of the List the object came from, for typed lists whose items omit them. */
  readonly listOf?: { apiVersion: string; kind: string };
}

/** The objects of a document: itself, or the items of a List (`kind: List`, `PodList`, nested). */
function objectsOf(
  value: unknown,
  node: YamlNode | undefined,
  listOf?: { apiVersion: string; kind: string },
): Found[] {
  const o = obj(value);
  if (!o) return [];
  const kind = str(o["kind"]) ?? listOf?.kind;
  const items = o["items"];
  if (kind && /List$/.test(kind) && Array.isArray(items)) {
    const itemNodes = isMap(node) ? node.get("items", true) : undefined;
    const apiVersion = str(o["apiVersion"]) ?? listOf?.apiVersion ?? "v1";
    // A typed list's items omit their kind: PodList holds Pods.
    const itemKind = kind === "List" ? undefined : kind.slice(0, -"List".length);
    return items.flatMap((item, i) =>
      objectsOf(
        item,
        isSeq(itemNodes) ? (itemNodes.items[i] as YamlNode | undefined) : undefined,
        itemKind ? { apiVersion, kind: itemKind } : undefined,
      ),
    );
  }
  return [{ value: o, node, ...(listOf ? { listOf } : {}) }];
}

/**
 * Records of the Kubernetes objects in a (multi-document) YAML text; merge keys applied. Throws a
 * `LoadError` for invalid YAML and for documents with more than `MAX_ALIAS_COUNT` aliases.
 */
export function recordsFromYaml(text: string, file: string): LoadedRecords {
  const records: ResourceRecord[] = [];
  const sources = new Map<string, SourceInfo>();
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { merge: true, lineCounter });
  const lineAt = (n: YamlNode | undefined) => (n?.range ? lineCounter.linePos(n.range[0]).line : undefined);
  let index = 0;
  for (const doc of docs) {
    if (doc.errors.length > 0)
      throw new LoadError(file, `invalid YAML: ${doc.errors[0]!.message.split("\n")[0]}`);
    let js: unknown;
    try {
      js = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (e) {
      if (e instanceof ReferenceError && /alias/i.test(e.message))
        throw new LoadError(file, `refused: more than ${MAX_ALIAS_COUNT} YAML aliases (an alias bomb?)`);
      throw new LoadError(file, `invalid YAML: ${(e as Error).message.split("\n")[0]}`);
    }
    for (const { value: o, node, listOf } of objectsOf(js, doc.contents ?? undefined)) {
      index++;
      const apiVersion = str(o["apiVersion"]) ?? listOf?.apiVersion;
      const kind = str(o["kind"]) ?? listOf?.kind;
      if (!apiVersion || !kind) continue;
      const inputs =
        o["kind"] === undefined || o["apiVersion"] === undefined ? { ...o, apiVersion, kind } : o;
      const md = obj(o["metadata"]) ?? {};
      const name = str(md["name"]) ?? `${kind.toLowerCase()}-${index}`;
      const type = typeOfManifest(apiVersion, kind);
      const urn = `urn:pulumi:cli::policy::${type}::${file}#${index}:${name}`;
      records.push({ urn, type, name, inputs });
      const line = lineAt(node);
      sources.set(urn, {
        file,
        kind,
        namespace: kind === "Namespace" ? "" : (str(md["namespace"]) ?? "default"),
        name,
        ...(line !== undefined ? { line } : {}),
        lineOf: (fieldPath) => {
          if (!isMap(node)) return undefined;
          const segs = pathSegments(fieldPath);
          // The deepest part of the path the document spells out (merged values live elsewhere).
          for (let n = segs.length; n > 0; n--) {
            const at = node.getIn(segs.slice(0, n), true) as YamlNode | undefined;
            const l = lineAt(at);
            if (l !== undefined) return l;
          }
          return undefined;
        },
      });
    }
  }
  return { records, sources, notes: [] };
}

/** A Dockerfile as the image resource that would build it. */
export function recordFromDockerfile(file: string): LoadedRecords {
  try {
    readFileSync(file, "utf8");
  } catch (e) {
    throw new LoadError(file, `cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const abs = path.resolve(file);
  const type = "docker:index/image:Image";
  const urn = `urn:pulumi:cli::policy::${type}::${file}`;
  const record: ResourceRecord = {
    urn,
    type,
    name: file,
    inputs: { build: { context: path.dirname(abs), dockerfile: abs } },
  };
  return {
    records: [record],
    sources: new Map([[urn, { file, kind: "Dockerfile", namespace: "", name: file, line: 1 }]]),
    notes: [],
  };
}

/**
 * Loads files and directories. A path that does not exist throws a `LoadError`; a file inside that
 * cannot be read, is invalid YAML or an alias bomb is refused, a Helm template skipped, each with a
 * note, and the other files are still loaded.
 */
export function loadPaths(paths: readonly string[]): LoadedRecords {
  const records: ResourceRecord[] = [];
  const sources = new Map<string, SourceInfo>();
  const notes: LoadNote[] = [];
  for (const p of paths) {
    for (const file of collectFiles(p, notes)) {
      let loaded: LoadedRecords;
      try {
        if (isDockerfilePath(file)) loaded = recordFromDockerfile(file);
        else {
          let text: string;
          try {
            text = readFileSync(file, "utf8");
          } catch (e) {
            throw new LoadError(file, `cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
          }
          const template = () =>
            notes.push({
              path: file,
              status: "skipped",
              reason: "a Helm template; check its rendered output",
            });
          if (isHelmTemplate(text, file)) {
            template();
            continue;
          }
          loaded = recordsFromYaml(text, file);
        }
      } catch (e) {
        if (!(e instanceof LoadError)) throw e;
        notes.push({ path: file, status: "refused", reason: e.message.slice(file.length + 2) });
        continue;
      }
      records.push(...loaded.records);
      for (const [k, v] of loaded.sources) sources.set(k, v);
    }
  }
  return { records, sources, notes };
}
