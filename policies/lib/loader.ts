/**
 * Loads plain Kubernetes YAML (multi-document, `List`s) and Dockerfiles into runner records, so
 * the same rules gate manifests and images outside Pulumi (`npm run policy -- check`), and the
 * preflight and bench can reuse it.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { parseAllDocuments } from "yaml";
import type { ResourceRecord } from "./runner";
import { obj, str } from "./values";

export interface SourceInfo {
  readonly file: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

export interface LoadedRecords {
  readonly records: ResourceRecord[];
  /** Where each record (by urn) came from. */
  readonly sources: Map<string, SourceInfo>;
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

/** Files under `p` the CLI checks (directories recursively; node_modules and dot dirs skipped). */
export function collectFiles(p: string): string[] {
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
      if (e.name.startsWith(".") || e.name === "node_modules") continue;
      out.push(...collectFiles(child));
    } else if (YAML_RE.test(e.name) || DOCKERFILE_RE.test(e.name)) {
      out.push(child);
    }
  }
  return out;
}

/** Pulumi type token of a Kubernetes object (`kubernetes:apps/v1:Deployment`, core as `core/v1`). */
export function typeOfManifest(apiVersion: string, kind: string): string {
  const gv = apiVersion.includes("/") ? apiVersion : `core/${apiVersion}`;
  return `kubernetes:${gv}:${kind}`;
}

/** Records of the Kubernetes objects in a (multi-document) YAML text. */
export function recordsFromYaml(text: string, file: string): LoadedRecords {
  const records: ResourceRecord[] = [];
  const sources = new Map<string, SourceInfo>();
  const docs = parseAllDocuments(text);
  let index = 0;
  for (const doc of docs) {
    if (doc.errors.length > 0)
      throw new LoadError(file, `invalid YAML: ${doc.errors[0]!.message.split("\n")[0]}`);
    const js: unknown = doc.toJS();
    const items = obj(js)?.["kind"] === "List" ? ((obj(js)!["items"] as unknown[] | undefined) ?? []) : [js];
    for (const item of items) {
      const o = obj(item);
      index++;
      const apiVersion = str(o?.["apiVersion"]);
      const kind = str(o?.["kind"]);
      if (!o || !apiVersion || !kind) continue;
      const md = obj(o["metadata"]) ?? {};
      const name = str(md["name"]) ?? `${kind.toLowerCase()}-${index}`;
      const type = typeOfManifest(apiVersion, kind);
      const urn = `urn:pulumi:cli::policy::${type}::${file}#${index}:${name}`;
      records.push({ urn, type, name, inputs: o });
      sources.set(urn, {
        file,
        kind,
        namespace: kind === "Namespace" ? "" : (str(md["namespace"]) ?? "default"),
        name,
      });
    }
  }
  return { records, sources };
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
    sources: new Map([[urn, { file, kind: "Dockerfile", namespace: "", name: file }]]),
  };
}

/** Loads files and directories; throws `LoadError` for unreadable or invalid input. */
export function loadPaths(paths: readonly string[]): LoadedRecords {
  const records: ResourceRecord[] = [];
  const sources = new Map<string, SourceInfo>();
  for (const p of paths) {
    for (const file of collectFiles(p)) {
      let loaded: LoadedRecords;
      if (isDockerfilePath(file)) loaded = recordFromDockerfile(file);
      else {
        let text: string;
        try {
          text = readFileSync(file, "utf8");
        } catch (e) {
          throw new LoadError(file, `cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
        }
        loaded = recordsFromYaml(text, file);
      }
      records.push(...loaded.records);
      for (const [k, v] of loaded.sources) sources.set(k, v);
    }
  }
  return { records, sources };
}
