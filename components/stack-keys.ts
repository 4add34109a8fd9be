/**
 * The keys of a stack's config outside the platform's own sections. Besides `platform:`, a stack
 * may set the apps' secrets (`apps:`), Pulumi's own settings (`pulumi:`) and the settings of the
 * providers the program uses; any other key is read by nothing, so it is refused with the key it
 * most likely meant (`platfrom:mesh` → `platform:mesh`; an un-namespaced `monitoring` →
 * `platform:monitoring`).
 */
import { APP_SECRETS_NAMESPACE } from "./apps/schema";
import { CONFIG_NAMESPACE, suggest, type ConfigProblem } from "./schema-kit";

/**
 * Namespaces of the providers the program uses (package.json: @pulumi/kubernetes, github, command,
 * random, @pulumiverse/vercel), and Pulumi's own (`pulumi:tags`, `pulumi:disable-default-providers`).
 */
export const PROVIDER_NAMESPACES = ["kubernetes", "github", "vercel", "command", "random", "pulumi"] as const;

/** Every namespace a stack's config may use. */
export const ALLOWED_NAMESPACES: readonly string[] = [
  CONFIG_NAMESPACE,
  APP_SECRETS_NAMESPACE,
  ...PROVIDER_NAMESPACES,
];

const allowedText = () =>
  `a stack's keys are ${CONFIG_NAMESPACE}:<key>, ${APP_SECRETS_NAMESPACE}:<secret> or a provider's setting ` +
  `(${PROVIDER_NAMESPACES.map((n) => `${n}:`).join(", ")})`;

/** `platform:<key>` for a key name that is, or nearly is, one of the platform's keys. */
function platformKey(name: string, platformKeys: readonly string[]): string | undefined {
  const hit = platformKeys.includes(name) ? name : suggest(name, platformKeys);
  return hit === undefined ? undefined : `${CONFIG_NAMESPACE}:${hit}`;
}

/**
 * One problem per key (full keys, as Pulumi hands them to the program) in a namespace nothing reads.
 * `project` is the Pulumi project: an un-namespaced key in a stack file is read as `<project>:<key>`,
 * and is reported as written. `platformKeys` are the names under `platform:` (sections and secrets).
 */
export function namespaceProblems(
  keys: readonly string[],
  context: { readonly project: string; readonly platformKeys: readonly string[] },
): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const key of keys) {
    const colon = key.indexOf(":");
    const namespace = colon < 0 ? context.project : key.slice(0, colon);
    const name = colon < 0 ? key : key.slice(colon + 1);
    if (ALLOWED_NAMESPACES.includes(namespace)) continue;
    if (namespace === context.project) {
      const meant = platformKey(name, context.platformKeys);
      out.push({
        key: name,
        message:
          `a key without a namespace is read as ${context.project}:${name}, which nothing reads` +
          (meant ? `; did you mean ${meant}?` : `; ${allowedText()}`),
      });
      continue;
    }
    // Stricter than for keys: short namespaces are close to many (`aws` is two edits from `apps`).
    const namespaceHint = suggest(
      namespace,
      ALLOWED_NAMESPACES,
      Math.max(1, Math.floor(namespace.length / 3)),
    );
    const meant =
      namespaceHint === CONFIG_NAMESPACE || namespaceHint === undefined
        ? platformKey(name, context.platformKeys)
        : `${namespaceHint}:${name}`;
    out.push({
      key,
      message: `unknown namespace "${namespace}"${meant ? ` (did you mean ${meant}?)` : ""}; ${allowedText()}`,
    });
  }
  return out;
}
