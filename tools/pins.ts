/**
 * `npm run pins [-- --check]`: resolves every image tag pinned in components/versions.ts (the
 * platform's `images` and every chart's `chartImages`) to the
 * digest its registry serves now (the multi-arch index, as `docker buildx imagetools inspect`
 * shows it) and writes it into versions.ts, so a digest is always one the publisher serves for
 * that tag, never one typed from memory. `--check` only reports. Offline (or for a registry that
 * refuses), it lists what it could not check and exits 1; nothing is rewritten for those.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { chartImages, images, type ImageVersion } from "../components/versions";

const ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

/** Registry host and repository path of an image reference (`docker.io/x` → Docker Hub's API). */
export function registryOf(repository: string): { host: string; path: string } {
  const parts = repository.split("/");
  const first = parts[0] ?? "";
  const explicit = parts.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost");
  const host = explicit ? first : "docker.io";
  let path = explicit ? parts.slice(1).join("/") : repository;
  if (host === "docker.io" && !path.includes("/")) path = `library/${path}`;
  return { host: host === "docker.io" ? "registry-1.docker.io" : host, path };
}

type Fetch = (url: string, init?: RequestInit) => Promise<Response>;

/** The digest `tag` resolves to, through the registry's anonymous token flow when it asks for one. */
export async function resolveDigest(image: ImageVersion, fetchImpl: Fetch = fetch): Promise<string> {
  const { host, path } = registryOf(image.repository);
  const url = `https://${host}/v2/${path}/manifests/${image.tag}`;
  const head = (headers: Record<string, string>) =>
    fetchImpl(url, {
      method: "HEAD",
      headers: { Accept: ACCEPT, ...headers },
      signal: AbortSignal.timeout(10_000),
    });
  let r = await head({});
  if (r.status === 401) {
    // `Bearer realm="...",service="...",scope="..."`: ask the realm for a pull token.
    const challenge = r.headers.get("www-authenticate") ?? "";
    const params: Record<string, string> = {};
    for (const m of challenge.matchAll(/(\w+)="([^"]*)"/g)) params[m[1]!] = m[2]!;
    if (!params["realm"]) throw new Error(`401 without a token realm`);
    const q = new URLSearchParams({
      ...(params["service"] ? { service: params["service"] } : {}),
      scope: params["scope"] ?? `repository:${path}:pull`,
    });
    const t = await fetchImpl(`${params["realm"]}?${q.toString()}`, { signal: AbortSignal.timeout(10_000) });
    if (!t.ok) throw new Error(`token request answered ${t.status}`);
    const body = (await t.json()) as { token?: string; access_token?: string };
    r = await head({ Authorization: `Bearer ${body.token ?? body.access_token ?? ""}` });
  }
  if (!r.ok) throw new Error(`${url} answered ${r.status}`);
  const digest = r.headers.get("docker-content-digest");
  if (!digest || !/^sha256:[0-9a-f]{64}$/.test(digest)) throw new Error(`${url} sent no digest`);
  return digest;
}

/**
 * versions.ts with `digest` set on every entry whose repository and tag match (added when absent,
 * replaced when stale; a chart image may be listed under several charts). Throws when there is no
 * such entry, rather than writing nothing.
 */
export function setDigest(source: string, image: ImageVersion, digest: string): string {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const repo = esc(image.repository);
  const tag = esc(image.tag);
  const entry = new RegExp(
    `(repository:\\s*"${repo}",\\s*tag:\\s*"${tag}")(,\\s*digest:\\s*"sha256:[0-9a-f]{64}")?`,
    "g",
  );
  // An image pinned by tag only is written `byTag("<repository>", "<tag>")`: it becomes an entry.
  const tagOnly = new RegExp(`byTag\\(\\s*"${repo}",\\s*"${tag}"\\s*\\)`, "g");
  if (!entry.test(source) && !tagOnly.test(source))
    throw new Error(`versions.ts has no entry for ${image.repository}:${image.tag}`);
  // test() on a global pattern moves lastIndex; replace() starts from 0 again.
  return source
    .replace(entry, `$1, digest: "${digest}"`)
    .replace(tagOnly, `{ repository: "${image.repository}", tag: "${image.tag}", digest: "${digest}" }`);
}

/** Every image versions.ts pins, once per repository:tag (charts share some, e.g. the device plugin). */
export function pinnedImages(): ImageVersion[] {
  const all: ImageVersion[] = [
    ...Object.values(images),
    ...Object.values(chartImages).flatMap((c) => Object.values(c.images)),
  ];
  const seen = new Set<string>();
  return all.filter((i) => {
    const ref = `${i.repository}:${i.tag}`;
    if (seen.has(ref)) return false;
    seen.add(ref);
    return true;
  });
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { check: { type: "boolean", default: false }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log("usage: npm run pins [-- --check]   resolve every pinned image tag to its digest (online)");
    return 0;
  }
  const file = join(__dirname, "..", "components", "versions.ts");
  let source = readFileSync(file, "utf8");
  const unchecked: string[] = [];
  const pinned = pinnedImages();
  const results = await Promise.allSettled(
    pinned.map(async (image) => ({ image, digest: await resolveDigest(image) })),
  );
  for (const [i, r] of results.entries()) {
    const image = pinned[i]!;
    const ref = `${image.repository}:${image.tag}`;
    if (r.status === "rejected") {
      const reason =
        r.reason instanceof Error
          ? r.reason.cause instanceof Error
            ? r.reason.cause.message
            : r.reason.message
          : String(r.reason);
      unchecked.push(`${ref}: ${reason}`);
      continue;
    }
    const { digest } = r.value;
    const before = image.digest;
    console.log(`${ref} ${before === digest ? "=" : before ? "changed ->" : "->"} ${digest}`);
    if (!values.check) source = setDigest(source, image, digest);
  }
  if (!values.check) writeFileSync(file, source);
  if (unchecked.length) {
    console.error(`could not check ${unchecked.length} of ${results.length} images (left as they are):`);
    for (const u of unchecked) console.error(`  ${u}`);
    return 1;
  }
  return 0;
}

if (require.main === module)
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(`pins: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(2);
    },
  );
