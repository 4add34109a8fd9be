/**
 * Secret sinks: the resource inputs where a credential is supposed to land. Secret detection
 * (policies) and the preflight's canary hunt both treat a value found here as in its right place;
 * found anywhere else, it is a leak. One list so the two can never disagree.
 */
export interface SecretSink {
  /** Pulumi type token. */
  readonly type: string;
  /** Input paths (dot-separated, `*` matches any one segment) that may hold a secret. */
  readonly paths: readonly string[];
  /** Extra condition on the resource inputs (e.g. a Vercel variable must be `sensitive`). */
  readonly when?: (inputs: Record<string, unknown>) => boolean;
}

export const SECRET_SINKS: readonly SecretSink[] = [
  { type: "kubernetes:core/v1:Secret", paths: ["data", "stringData"] },
  // Ciphertext only the cluster's controller can open: the form a Secret takes to be committed.
  { type: "kubernetes:bitnami.com/v1alpha1:SealedSecret", paths: ["spec.encryptedData"] },
  { type: "pulumi:providers:kubernetes", paths: ["kubeconfig"] },
  { type: "github:index/actionsSecret:ActionsSecret", paths: ["value", "plaintextValue", "encryptedValue"] },
  {
    type: "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret",
    paths: ["value", "plaintextValue", "encryptedValue"],
  },
  { type: "pulumi:providers:github", paths: ["token"] },
  {
    type: "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable",
    paths: ["value"],
    when: (inputs) => inputs["sensitive"] === true,
  },
  {
    type: "vercel:index/projectEnvironmentVariables:ProjectEnvironmentVariables",
    paths: ["variables.*.value"],
  },
  { type: "pulumi:providers:vercel", paths: ["apiToken"] },
  { type: "docker:index/image:Image", paths: ["registry.password"] },
  { type: "pulumi:providers:docker", paths: ["registryAuth"] },
  { type: "command:remote:Command", paths: ["connection.privateKey", "connection.password", "stdin"] },
  // The image build (components/images/service-image.ts) reads the registry password on stdin.
  { type: "command:local:Command", paths: ["stdin"] },
  { type: "command:remote:CopyToRemote", paths: ["connection.privateKey", "connection.password"] },
  { type: "command:remote:CopyFile", paths: ["connection.privateKey", "connection.password"] },
];

const byType = new Map<string, SecretSink[]>();
for (const sink of SECRET_SINKS) byType.set(sink.type, [...(byType.get(sink.type) ?? []), sink]);

function pathMatches(pattern: string, path: readonly (string | number)[]): boolean {
  const segments = pattern.split(".");
  if (path.length < segments.length) return false;
  return segments.every((seg, i) => seg === "*" || seg === String(path[i]));
}

/** True when `path` inside a resource of `type` with `inputs` is a secret sink. */
export function isSecretSink(
  type: string,
  path: readonly (string | number)[],
  inputs: Record<string, unknown>,
): boolean {
  const sinks = byType.get(type);
  if (!sinks) return false;
  return sinks.some(
    (s) => (s.when === undefined || s.when(inputs)) && s.paths.some((p) => pathMatches(p, path)),
  );
}

/** True when the resource type has any secret sink (cheap pre-check for hot loops). */
export function hasSecretSinks(type: string): boolean {
  return byType.has(type);
}
