/** Secret rules: credentials belong in secret sinks, never in plain inputs. */
import { buildPropsOf } from "../lib/builds";
import { dockerfileOf, readDockerfile } from "../lib/dockerfile";
import { containersOf, helmValuesOf, isHelmChart, isKind, podSpecsOf } from "../lib/k8s";
import { defineResourcePolicy, updateIn } from "../lib/policy";
import {
  compilePatterns,
  detectInString,
  isLiteralUnderSecretName,
  isSecretLikeKey,
  scanForSecrets,
  sinkSkipper,
  type EntropyOptions,
} from "../lib/secrets";
import { stringList } from "../lib/config";
import { arr, formatPath, globMatch, isUnknown, obj, str, type Obj } from "../lib/values";

interface DetectionConfig {
  readonly entropyThreshold: number;
  readonly minLength: number;
  readonly allowPatterns: string[];
}

const detectionSchema = {
  entropyThreshold: {
    type: "number" as const,
    minimum: 0,
    maximum: 8,
    description: "Shannon entropy (bits/char) above which a literal under a secret-like key is a credential.",
    default: 3.0,
  },
  minLength: {
    type: "integer" as const,
    minimum: 1,
    description: "Shortest literal considered a credential.",
    default: 8,
  },
  allowPatterns: stringList(
    "Regular expressions for values that are known not to be secrets (e.g. public keys).",
  ),
};

const entropyOf = (c: DetectionConfig): EntropyOptions => ({
  entropyThreshold: c.entropyThreshold ?? 3.0,
  minLength: c.minLength ?? 8,
});

const allowed = (c: DetectionConfig, value: string): boolean =>
  compilePatterns(c.allowPatterns).some((re) => re.test(value));

/** Content check of one value: detectors, then (for candidates) secretlint. */
async function valueLooksSecret(
  value: string,
  name: string | undefined,
  c: DetectionConfig,
): Promise<string | undefined> {
  if (isUnknown(value) || allowed(c, value)) return undefined;
  const hit = detectInString(value, name, entropyOf(c));
  if (hit) return hit.message;
  const found = await scanForSecrets(value, {
    ...entropyOf(c),
    allowPatterns: compilePatterns(c.allowPatterns),
  });
  return found[0]?.message;
}

export const noPlaintextSecrets = defineResourcePolicy<DetectionConfig & { ignoreTypes: string[] }>({
  name: "no-plaintext-secrets",
  description: "No credential-like strings in any resource input outside the secret sinks.",
  enforcementLevel: "mandatory",
  severity: "critical",
  remediationSteps:
    "Move the value into a secret sink: a Kubernetes Secret (mounted as a file), a GitHub Actions secret, a sensitive Vercel variable, or the provider's credential input; read it from Pulumi config with `config.requireSecret()` so it stays encrypted in state. If the string is not a credential, add a narrow `allowPatterns` entry or an exemption with a reason.",
  config: {
    ...detectionSchema,
    ignoreTypes: stringList(
      "Type tokens (globs) not scanned. Component resources are skipped by default: their children, where values land, are scanned.",
      ["platform:*"],
    ),
  },
  appliesTo: () => true,
  validate: async (ctx, report) => {
    if ((ctx.config.ignoreTypes ?? ["platform:*"]).some((g) => globMatch(g, ctx.type))) return;
    const findings = await scanForSecrets(ctx.props, {
      ...entropyOf(ctx.config),
      allowPatterns: compilePatterns(ctx.config.allowPatterns),
      ...(sinkSkipper(ctx.type, ctx.props) ? { skip: sinkSkipper(ctx.type, ctx.props)! } : {}),
    });
    for (const f of findings) report(`${formatPath(f.path)} holds ${f.message} outside a secret sink`);
  },
});

/** Secret-like env var names with literal values, in pod specs and in Helm values env lists. */
function literalSecretEnv(env: unknown, minLength: number): { index: number; name: string }[] {
  const out: { index: number; name: string }[] = [];
  arr(env).forEach((e, index) => {
    const o = obj(e);
    const name = str(o?.["name"]);
    const value = o?.["value"];
    if (!name || typeof value !== "string" || isUnknown(value)) return;
    if (isLiteralUnderSecretName(name, value, minLength)) out.push({ index, name });
  });
  return out;
}

function helmEnvLists(values: Obj): { path: (string | number)[]; env: unknown[] }[] {
  const out: { path: (string | number)[]; env: unknown[] }[] = [];
  const walk = (v: unknown, path: (string | number)[], depth: number): void => {
    if (depth > 12) return;
    if (Array.isArray(v)) {
      if (v.some((e) => obj(e) && typeof obj(e)!["name"] === "string" && "value" in obj(e)!))
        out.push({ path, env: v });
      v.forEach((e, i) => {
        if (obj(e)) walk(e, [...path, i], depth + 1);
      });
      return;
    }
    const o = obj(v);
    if (!o) return;
    for (const [k, child] of Object.entries(o))
      if (child && typeof child === "object") walk(child, [...path, k], depth + 1);
  };
  walk(values, [], 0);
  return out;
}

export const k8sEnvNoLiteralSecrets = defineResourcePolicy<{ minLength: number; allowNames: string[] }>({
  name: "k8s-env-no-literal-secrets",
  description: "An environment variable with a secret-like name must not have a literal `value`.",
  enforcementLevel: "mandatory",
  severity: "critical",
  remediationSteps:
    "Put the value in a Kubernetes Secret and mount it as a file (preferred), or reference it with `valueFrom.secretKeyRef`. In Helm values, use the chart's `existingSecret`/`extraEnvFrom` options instead of inline env values.",
  config: {
    minLength: {
      type: "integer",
      minimum: 1,
      description: "Shortest literal considered a secret.",
      default: 4,
    },
    allowNames: stringList(
      "Env var names (globs) that look secret-like but are not (e.g. a public demo's `DEMO_LICENSE_TOKEN`).",
    ),
  },
  appliesTo: (type, props) => isHelmChart(type) || podSpecsOf(type, props).length > 0,
  validate: (ctx, report) => {
    const minLength = ctx.config.minLength ?? 4;
    const allow = ctx.config.allowNames ?? [];
    const ok = (name: string) => allow.some((g) => globMatch(g, name));
    for (const pod of podSpecsOf(ctx.type, ctx.props)) {
      for (const c of containersOf(pod)) {
        for (const { index, name } of literalSecretEnv(c.container["env"], minLength)) {
          if (ok(name)) continue;
          report(
            `${c.kind} "${c.name}" sets ${name} as a literal value (${formatPath([...c.path, "env", index, "value"])})`,
          );
        }
      }
    }
    const values = helmValuesOf(ctx.type, ctx.props);
    if (values) {
      for (const { path, env } of helmEnvLists(values)) {
        for (const { index, name } of literalSecretEnv(env, minLength)) {
          if (!ok(name))
            report(`Helm value ${formatPath(["values", ...path, index])} sets ${name} as a literal value`);
        }
      }
    }
  },
});

export const k8sConfigMapNoSecrets = defineResourcePolicy<DetectionConfig>({
  name: "k8s-configmap-no-secrets",
  description: "ConfigMap data must not contain credentials.",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps:
    "Move the credential into a Kubernetes Secret (created from a Pulumi secret) and mount it next to the config file, or template it in at start-up from an env var that comes from the Secret.",
  config: detectionSchema,
  appliesTo: (type, props) => isKind(type, props, "", "ConfigMap"),
  validate: async (ctx, report) => {
    for (const field of ["data", "binaryData"]) {
      const data = obj(ctx.props[field]);
      if (!data) continue;
      for (const [key, v] of Object.entries(data)) {
        if (typeof v !== "string") continue;
        let value = v;
        if (field === "binaryData") {
          const decoded = Buffer.from(v, "base64").toString("utf8");
          if (!/^[\t\n\r\x20-\x7e]*$/.test(decoded)) continue;
          value = decoded;
        }
        const why = await valueLooksSecret(value, key, ctx.config);
        if (why) report(`${field}.${key} contains ${why}`);
      }
    }
  },
});

export const k8sSecretsAsFiles = defineResourcePolicy<{ allowEnvNames: string[] }>({
  name: "k8s-secrets-as-files",
  description: "Secrets should be mounted as files, not consumed via environment variables.",
  enforcementLevel: "advisory",
  severity: "medium",
  remediationSteps:
    "Mount the Secret as a volume (`volumes[].secret` + `volumeMounts`, read-only) and point the app at the file (e.g. `*_FILE` variables). Env vars leak into crash dumps, `/proc/<pid>/environ`, child processes and logs.",
  config: {
    allowEnvNames: stringList(
      "Env var names (globs) allowed to come from Secrets (apps that only read env).",
    ),
  },
  appliesTo: (type, props) => podSpecsOf(type, props).length > 0,
  validate: (ctx, report) => {
    const allow = ctx.config.allowEnvNames ?? [];
    for (const pod of podSpecsOf(ctx.type, ctx.props)) {
      for (const c of containersOf(pod)) {
        arr(c.container["env"]).forEach((e) => {
          const o = obj(e);
          const name = str(o?.["name"]) ?? "?";
          if (obj(obj(o?.["valueFrom"])?.["secretKeyRef"]) && !allow.some((g) => globMatch(g, name))) {
            report(`${c.kind} "${c.name}" reads Secret into env var ${name} (valueFrom.secretKeyRef)`);
          }
        });
        arr(c.container["envFrom"]).forEach((e) => {
          const ref = obj(obj(e)?.["secretRef"]);
          if (ref)
            report(
              `${c.kind} "${c.name}" loads Secret "${str(ref["name"]) ?? "?"}" into env (envFrom.secretRef)`,
            );
        });
      }
    }
  },
});

/** Keys Helm charts use to point at a Secret rather than hold a value. */
const HELM_REFERENCE_KEY_RE = /existingsecret|secretname|secretref|secretkeyref|fromsecret|valuefrom/i;

export const helmValuesNoSecrets = defineResourcePolicy<DetectionConfig & { allowKeys: string[] }>({
  name: "helm-values-no-secrets",
  description: "Secret-like Helm chart values must not be given inline; use the chart's `existingSecret`.",
  enforcementLevel: "mandatory",
  severity: "critical",
  remediationSteps:
    "Create a Kubernetes Secret from a Pulumi secret and pass its name through the chart's `existingSecret` (or `*.existingSecret`, `envFromSecret`, `secretKeyRef`) option; leave the inline value empty.",
  config: {
    ...detectionSchema,
    allowKeys: stringList(
      "Dot paths (globs) of values allowed inline, e.g. `grafana.ini.auth.disable_login_form`.",
    ),
  },
  appliesTo: (type) => isHelmChart(type),
  validate: async (ctx, report) => {
    const values = helmValuesOf(ctx.type, ctx.props);
    if (!values) return;
    const allowKeys = ctx.config.allowKeys ?? [];
    const minLength = Math.min(ctx.config.minLength ?? 8, 6);
    const reported = new Set<string>();
    const walk = (
      v: unknown,
      path: (string | number)[],
      key: string | undefined,
      underRef: boolean,
      depth: number,
    ) => {
      if (depth > 32) return;
      if (typeof v === "string") {
        if (underRef || key === undefined || isUnknown(v)) return;
        const dotted = path.join(".");
        if (allowKeys.some((g) => globMatch(g, dotted)) || allowed(ctx.config, v)) return;
        if (isLiteralUnderSecretName(key, v, minLength)) {
          reported.add(dotted);
          report(
            `value ${formatPath(["values", ...path])} is given inline; reference an existing Secret instead`,
          );
        }
        return;
      }
      if (Array.isArray(v)) {
        v.forEach((x, i) => walk(x, [...path, i], key, underRef, depth + 1));
        return;
      }
      const o = obj(v);
      if (!o) return;
      for (const [k, child] of Object.entries(o)) {
        walk(child, [...path, k], k, underRef || HELM_REFERENCE_KEY_RE.test(k), depth + 1);
      }
    };
    walk(values, [], undefined, false, 0);
    // Credentials under innocuous keys (tokens, keys, URLs with passwords) are found by content.
    const findings = await scanForSecrets(values, {
      ...entropyOf(ctx.config),
      allowPatterns: compilePatterns(ctx.config.allowPatterns),
    });
    for (const f of findings) {
      const dotted = f.path.join(".");
      if (reported.has(dotted) || allowKeys.some((g) => globMatch(g, dotted))) continue;
      report(
        `value ${formatPath(["values", ...f.path])} contains ${f.message}; reference an existing Secret instead`,
      );
    }
  },
});

const GITHUB_VARIABLE_TYPES = new Set([
  "github:index/actionsVariable:ActionsVariable",
  "github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable",
  "github:index/actionsOrganizationVariable:ActionsOrganizationVariable",
]);

export const githubVariableNoSecrets = defineResourcePolicy<DetectionConfig & { allowNames: string[] }>({
  name: "github-variable-no-secrets",
  description: "GitHub Actions variables are plaintext: none may hold a secret.",
  enforcementLevel: "mandatory",
  severity: "critical",
  remediationSteps:
    "Use `github.ActionsSecret` (or `ActionsEnvironmentSecret`) with `plaintextValue` from a Pulumi secret, and read it as `${{ secrets.NAME }}` in the workflow. Better still, use OIDC federation so no long-lived credential is stored.",
  config: {
    ...detectionSchema,
    allowNames: stringList("Variable names (globs) that look secret-like but are not."),
  },
  appliesTo: (type) => GITHUB_VARIABLE_TYPES.has(type),
  validate: async (ctx, report) => {
    const name = str(ctx.props["variableName"]) ?? ctx.name;
    const value = ctx.props["value"];
    if (typeof value !== "string" || isUnknown(value)) return;
    if ((ctx.config.allowNames ?? []).some((g) => globMatch(g, name))) return;
    if (isLiteralUnderSecretName(name, value, ctx.config.minLength ?? 8) && !allowed(ctx.config, value)) {
      report(`Actions variable ${name} has a secret-like name and a literal value; use an Actions secret`);
      return;
    }
    const why = await valueLooksSecret(value, name, ctx.config);
    if (why) report(`Actions variable ${name} contains ${why}; use an Actions secret`);
  },
});

const VERCEL_VAR = "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable";
const VERCEL_VARS = "vercel:index/projectEnvironmentVariables:ProjectEnvironmentVariables";

function vercelNeedsSensitive(v: Obj, c: DetectionConfig & { allowKeys?: string[] }): boolean {
  if (v["sensitive"] === true) return false;
  const key = str(v["key"]) ?? "";
  if ((c.allowKeys ?? []).some((g) => globMatch(g, key))) return false;
  const value = v["value"];
  if (isSecretLikeKey(key)) {
    // A computed value under a secret-like name is a secret being wired in: mark it sensitive.
    if (typeof value !== "string" || isUnknown(value)) return true;
    if (!allowed(c, value) && isLiteralUnderSecretName(key, value, 1)) return true;
  }
  if (typeof value === "string" && !isUnknown(value) && !allowed(c, value)) {
    if (detectInString(value, key, entropyOf(c))) return true;
  }
  return false;
}

/** Vercel rejects `sensitive` for the development target; remediation drops that target. */
function makeSensitive(v: Obj): Obj {
  const targets = arr(v["targets"]).filter((t) => t !== "development");
  return { ...v, sensitive: true, ...(Array.isArray(v["targets"]) ? { targets } : {}) };
}

export const vercelEnvSensitive = defineResourcePolicy<DetectionConfig & { allowKeys: string[] }>({
  name: "vercel-env-sensitive",
  description: "Secret-like Vercel environment variables must be `sensitive`.",
  enforcementLevel: "remediate",
  severity: "high",
  remediationSteps:
    "Set `sensitive: true` on the variable (remediation does this, and drops the `development` target, which Vercel does not allow for sensitive variables). Sensitive values cannot be read back from the dashboard or API.",
  config: {
    ...detectionSchema,
    allowKeys: stringList("Variable keys (globs) that look secret-like but are public."),
  },
  appliesTo: (type) => type === VERCEL_VAR || type === VERCEL_VARS,
  validate: (ctx, report) => {
    if (ctx.type === VERCEL_VAR) {
      if (vercelNeedsSensitive(ctx.props, ctx.config)) {
        report(
          `Vercel variable ${str(ctx.props["key"]) ?? ctx.name} looks like a secret but is not sensitive`,
        );
      }
      return;
    }
    arr(ctx.props["variables"]).forEach((v, i) => {
      const o = obj(v);
      if (o && vercelNeedsSensitive(o, ctx.config)) {
        report(`variables[${i}] (${str(o["key"]) ?? "?"}) looks like a secret but is not sensitive`);
      }
    });
  },
  remediate: (ctx) => {
    if (ctx.type === VERCEL_VAR) {
      return vercelNeedsSensitive(ctx.props, ctx.config) ? makeSensitive(ctx.props) : undefined;
    }
    const vars = arr(ctx.props["variables"]);
    if (!vars.some((v) => obj(v) && vercelNeedsSensitive(obj(v)!, ctx.config))) return undefined;
    return updateIn(ctx.props, ["variables"], () =>
      vars.map((v) => (obj(v) && vercelNeedsSensitive(obj(v)!, ctx.config) ? makeSensitive(obj(v)!) : v)),
    );
  },
});

export const dockerBuildArgsNoSecrets = defineResourcePolicy<DetectionConfig & { rootDir?: string }>({
  name: "docker-build-args-no-secrets",
  description:
    "Image build args (and Dockerfile ARG/ENV defaults) must not carry secrets: they persist in image history.",
  enforcementLevel: "mandatory",
  severity: "critical",
  remediationSteps:
    "Pass credentials as BuildKit secrets (`RUN --mount=type=secret,id=npm_token ...` with the build's `secrets` input) so they never enter a layer or the image history; never as `--build-arg` or `ENV`.",
  config: {
    ...detectionSchema,
    rootDir: {
      type: "string",
      description: "Directory relative Dockerfile paths are resolved from (default: the repo root).",
    },
  },
  appliesTo: (type, props) => buildPropsOf(type, props) !== undefined,
  validate: async (ctx, report) => {
    const props = buildPropsOf(ctx.type, ctx.props) ?? {};
    const build = obj(props["build"]);
    for (const [name, value] of Object.entries(obj(build?.["args"]) ?? {})) {
      if (typeof value !== "string" || isUnknown(value)) continue;
      if (isLiteralUnderSecretName(name, value, 1) && !allowed(ctx.config, value)) {
        report(`build arg ${name} has a secret-like name; use a BuildKit secret mount`);
        continue;
      }
      const why = await valueLooksSecret(value, name, ctx.config);
      if (why) report(`build arg ${name} contains ${why}; use a BuildKit secret mount`);
    }
    const src = dockerfileOf(props, ctx.config.rootDir);
    if (src?.kind !== "file") return;
    let df;
    try {
      df = readDockerfile(src.path);
    } catch {
      return; // reported by dockerfile-multi-stage
    }
    for (const ins of df.instructions) {
      const kw = ins.getKeyword();
      if (kw !== "ARG" && kw !== "ENV") continue;
      const props = (
        ins as unknown as { getProperties?: () => { getName(): string; getValue(): string | null }[] }
      ).getProperties;
      const line = ins.getRange().start.line + 1;
      for (const p of typeof props === "function" ? props.call(ins) : []) {
        const value = p.getValue();
        const name = p.getName();
        if (value && isLiteralUnderSecretName(name, value, 4)) {
          if (!allowed(ctx.config, value))
            report(`Dockerfile line ${line}: ${kw} ${name} has a literal default value`);
        }
      }
    }
  },
});

export const secretPolicies = [
  noPlaintextSecrets,
  k8sEnvNoLiteralSecrets,
  k8sConfigMapNoSecrets,
  k8sSecretsAsFiles,
  helmValuesNoSecrets,
  githubVariableNoSecrets,
  vercelEnvSensitive,
  dockerBuildArgsNoSecrets,
];
