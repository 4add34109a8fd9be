/**
 * Pulumi's mock runtime with a recorder: every registration (type, name, parent, inputs with their
 * secret markers, protect, dependsOn) and every registerOutputs call, cheaply, in order. Provider
 * outputs that a program reads back (generated passwords, image digests, command stdout) come from
 * small per-type fakes so the program evaluates as it would on `pulumi up`.
 */
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { deserializeProperties, specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";
import * as settings from "@pulumi/pulumi/runtime/settings";
import { CANARY_PREFIX } from "./stack-config";

export interface Registration {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  readonly parent?: string;
  readonly custom: boolean;
  readonly protect: boolean;
  readonly dependsOn: string[];
  /** Inputs as the engine receives them: secret values wrapped as `{[sigKey]: secretSig, value}`. */
  inputs: Record<string, unknown>;
  /** What a component registered with registerOutputs (secrets wrapped the same way). */
  outputs?: Record<string, unknown>;
  /** `customTimeouts` resource option, as Pulumi duration strings. */
  readonly customTimeouts?: { readonly create?: string; readonly update?: string };
  /** Set on objects the render mode expanded out of a Chart (never on the program's own). */
  readonly rendered?: { readonly chartUrn: string; readonly ref: string; readonly source: string };
}

export interface Recording {
  readonly registrations: Registration[];
  readonly byUrn: Map<string, Registration>;
  /** What the program logged with pulumi.log.warn (an engine would show it; offline, the reports do). */
  readonly warnings: ProgramWarning[];
}

/** A warning the program (or the SDK on its behalf) logged, with the resource it named. */
export interface ProgramWarning {
  readonly message: string;
  /** The URN of the resource passed to pulumi.log.warn, once registered. */
  urn?: string;
}

/** The recording the next runRecorded fills (one program runs at a time: the runtime is process-wide). */
let active: Recording | undefined;

export type SecretWrapped = { [specialSigKey]: typeof specialSecretSig; value: unknown };

export function isSecretWrapped(v: unknown): v is SecretWrapped {
  return (
    typeof v === "object" && v !== null && (v as Record<string, unknown>)[specialSigKey] === specialSecretSig
  );
}

export function wrapSecret(value: unknown): SecretWrapped {
  return { [specialSigKey]: specialSecretSig, value };
}

/**
 * A value with every secret-wrapped part replaced by `onSecret(inner value)`. Copy on write: a part
 * without secrets is returned as it is (callers treat the result as read-only), so rendered charts'
 * megabytes of CRD schemas are neither copied nor left for the collector, and an object keeps its
 * identity for the checks that remember what they judged.
 */
function mapSecrets(v: unknown, onSecret: (inner: unknown) => unknown): unknown {
  if (v === null || typeof v !== "object") return v;
  if (isSecretWrapped(v)) return onSecret(v.value);
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      const y = mapSecrets(x, onSecret);
      if (y !== x) (out ??= v.slice())[i] = y;
    }
    return out ?? v;
  }
  let out: Record<string, unknown> | undefined;
  const o = v as Record<string, unknown>;
  for (const k in o) {
    const x = o[k];
    const y = mapSecrets(x, onSecret);
    if (y !== x) (out ??= { ...o })[k] = y;
  }
  return out ?? o;
}

/** Recursively drops secret markers (what CrossGuard shows a policy). */
export function unwrapSecrets(v: unknown): unknown {
  return mapSecrets(v, unwrapSecrets);
}

/** Secret values replaced by "[secret]" (what the plan and manifests show). */
export function redactSecrets(v: unknown): unknown {
  return mapSecrets(v, () => "[secret]");
}

/**
 * What a registration is about: its inputs for resources and remote components (Helm charts),
 * what it registered as outputs for local components (their args stay in the program).
 */
export function propsOf(r: Registration): Record<string, unknown> {
  return r.custom || !r.outputs ? r.inputs : r.outputs;
}

// Internal to the SDK (stripped from its typings) but stable: drains the RPC queue.
const sdk = settings as unknown as {
  getMonitor(this: void): unknown;
  waitForRPCs(this: void): Promise<void>;
};

const digestOf = (s: string) => createHash("sha256").update(s).digest("hex");

/** The canary a generated password of this resource name carries under the recorder. */
export function generatedCanary(name: string): string {
  return `${CANARY_PREFIX}-generated-${name}-${digestOf(name).slice(0, 16)}`;
}

/** Resource types whose generated value the recorder fakes as a canary. */
export const GENERATED_SECRET_TYPES: ReadonlySet<string> = new Set([
  "random:index/randomPassword:RandomPassword",
]);

type FakeOutputs = (name: string, inputs: Record<string, unknown>) => Record<string, unknown>;

/**
 * Outputs real providers compute, faked per type. Generated credentials are canaries too, so the
 * hunt follows them as it follows stack secrets.
 */
export const FAKE_OUTPUTS: Record<string, FakeOutputs> = {
  "random:index/randomPassword:RandomPassword": (name) => {
    const value = generatedCanary(name);
    return { result: wrapSecret(value), bcryptHash: wrapSecret(`$2a$10$${digestOf(value).slice(0, 53)}`) };
  },
  "random:index/randomBytes:RandomBytes": (name) => ({
    base64: wrapSecret(Buffer.from(`${CANARY_PREFIX}-generated-${name}`).toString("base64")),
    hex: wrapSecret(digestOf(name)),
  }),
  "random:index/randomId:RandomId": (name) => ({
    hex: digestOf(name).slice(0, 16),
    b64Url: digestOf(name).slice(0, 11),
  }),
  "docker:index/image:Image": (name, inputs) => {
    const imageName = typeof inputs["imageName"] === "string" ? inputs["imageName"] : name;
    const repo = imageName.replace(/:[^/:]+$/, "");
    return { repoDigest: `${repo}@sha256:${digestOf(imageName)}`, imageName };
  },
  // A local build command (components/images/service-image.ts) prints the pushed image's digest.
  "command:local:Command": (_name, inputs) => {
    const env = inputs["environment"] as Record<string, unknown> | undefined;
    const image = typeof env?.["IMAGE_NAME"] === "string" ? env["IMAGE_NAME"] : undefined;
    return { stdout: image ? `sha256:${digestOf(image)}\n` : "", stderr: "" };
  },
  // A remote command that prints a K3s kubeconfig (k3s.yaml) returns one, as a K3s server would.
  "command:remote:Command": (name, inputs) => {
    const create = typeof inputs["create"] === "string" ? inputs["create"] : "";
    // The K3s deployer-token command prints the ServiceAccount token and the cluster CA (base64).
    if (create.includes("kubernetes.io/service-account-token")) {
      const b64 = (what: string) => Buffer.from(`fake ${what} for ${name}`).toString("base64");
      return { stdout: wrapSecret(JSON.stringify({ token: b64("token"), ca: b64("ca") })), stderr: "" };
    }
    if (!create.includes("k3s.yaml")) return { stdout: "", stderr: "" };
    const pem = (what: string) => Buffer.from(`fake ${what} for ${name}`).toString("base64");
    return {
      stdout: wrapSecret(
        [
          "apiVersion: v1",
          "clusters:",
          "- cluster:",
          `    certificate-authority-data: ${pem("ca")}`,
          "    server: https://127.0.0.1:6443",
          "  name: default",
          "contexts:",
          "- context:",
          "    cluster: default",
          "    user: default",
          "  name: default",
          "current-context: default",
          "kind: Config",
          "preferences: {}",
          "users:",
          "- name: default",
          "  user:",
          `    client-certificate-data: ${pem("client certificate")}`,
          `    client-key-data: ${pem("client key")}`,
          "",
        ].join("\n"),
      ),
      stderr: "",
    };
  },
};

/** Lets a component module add fakes for its provider types (e.g. a command's stdout). */
export function registerFakeOutputs(type: string, fake: FakeOutputs): void {
  FAKE_OUTPUTS[type] = fake;
}

type FakeCall = (inputs: Record<string, unknown>) => Record<string, unknown>;
const fakeId = (s: string) => parseInt(digestOf(s).slice(0, 7), 16);

/**
 * Results of provider functions (invokes) the program reads, faked per token; other invokes echo
 * their inputs. Ids are deterministic so plans diff cleanly.
 */
export const FAKE_CALLS: Record<string, FakeCall> = {
  "github:index/getUser:getUser": (inputs) => ({ id: String(fakeId(`user:${String(inputs["username"])}`)) }),
  "github:index/getTeam:getTeam": (inputs) => ({ id: String(fakeId(`team:${String(inputs["slug"])}`)) }),
  "vercel:index/getProject:getProject": (inputs) => ({
    id: `prj_${digestOf(String(inputs["name"])).slice(0, 24)}`,
  }),
};

/** Lets a component module add fakes for the provider functions it calls. */
export function registerFakeCall(token: string, fake: FakeCall): void {
  FAKE_CALLS[token] = fake;
}

const mocks: pulumi.runtime.Mocks = {
  newResource(args) {
    const inputs = args.inputs as Record<string, unknown>;
    const fake = FAKE_OUTPUTS[args.type];
    return {
      id: args.custom === false ? undefined : `${args.name}-id`,
      state: fake ? { ...inputs, ...fake(args.name, inputs) } : inputs,
    };
  },
  call(args) {
    const inputs = args.inputs as Record<string, unknown>;
    const fake = FAKE_CALLS[args.token];
    return fake ? { ...inputs, ...fake(inputs) } : inputs;
  },
};

interface MonitorLike {
  newUrn(parent: string, type: string, name: string): string;
  registerResource(req: RegisterRequest, cb: unknown): unknown;
  registerResourceOutputs(req: OutputsRequest, cb: unknown): unknown;
  mocks: pulumi.runtime.Mocks;
}
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getProtect(): boolean;
  getDependenciesList(): string[];
  getCustomtimeouts(): { getCreate(): string; getUpdate(): string } | undefined;
}
interface OutputsRequest {
  getUrn(): string;
  getOutputs(): unknown;
}

/**
 * Installs the mock runtime for one stack run and returns the recording it fills. Call again for
 * the next stack: each call starts from a fresh monitor and fresh runtime state.
 */
/** The Pulumi organization `pulumi.getOrganization()` returns offline. */
export const PREFLIGHT_ORGANIZATION = "organization";

export async function installRecorder(project: string, stack: string): Promise<Recording> {
  // An organization too: the program reads pulumi.getOrganization() (the delivery's OIDC exchange).
  await pulumi.runtime.setMocks(mocks, project, stack, false, PREFLIGHT_ORGANIZATION);
  const monitor = sdk.getMonitor() as MonitorLike;
  const recording: Recording = { registrations: [], byUrn: new Map(), warnings: [] };
  active = recording;
  let current: Registration | undefined;

  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    const type = req.getType();
    const name = req.getName();
    const parent = req.getParent();
    const timeouts = req.getCustomtimeouts();
    const create = timeouts?.getCreate();
    const update = timeouts?.getUpdate();
    const reg: Registration = {
      urn: monitor.newUrn(parent, type, name),
      type,
      name,
      ...(parent ? { parent } : {}),
      custom: req.getCustom(),
      protect: req.getProtect(),
      dependsOn: req.getDependenciesList(),
      ...(create || update
        ? { customTimeouts: { ...(create ? { create } : {}), ...(update ? { update } : {}) } }
        : {}),
      inputs: {},
    };
    recording.registrations.push(reg);
    recording.byUrn.set(reg.urn, reg);
    current = reg;
    // The mock monitor deserializes the inputs and calls newResource before its first await.
    return register(req, cb);
  };
  const newResource = mocks.newResource.bind(mocks);
  monitor.mocks = {
    ...mocks,
    newResource(args) {
      if (current) current.inputs = args.inputs as Record<string, unknown>;
      current = undefined;
      return newResource(args);
    },
  };
  const registerOutputs = monitor.registerResourceOutputs.bind(monitor);
  monitor.registerResourceOutputs = (req, cb) => {
    const reg = recording.byUrn.get(req.getUrn());
    if (reg)
      reg.outputs = deserializeProperties(req.getOutputs() as Parameters<typeof deserializeProperties>[0]);
    return registerOutputs(req, cb);
  };
  return recording;
}

/** Runs `program` as the stack's root under the installed recorder and waits for every RPC. */
export async function runRecorded<T extends object>(
  program: () => T | Promise<T>,
  options: { stackTraces?: boolean } = {},
): Promise<void> {
  // The SDK takes `new Error().stack` for every promise it makes (leak reports) and every resource
  // (source positions). Formatting those stacks, source-mapped under tsx, was half the preflight's
  // time; offline, nobody reads them. `stackTraces: true` (preflight --stack-traces) keeps them
  // for debugging a program that throws.
  const sourceMaps = process.sourceMapsEnabled;
  const limit = Error.stackTraceLimit;
  if (!options.stackTraces) {
    process.setSourceMapsEnabled(false);
    Error.stackTraceLimit = 0;
  }
  // Without an engine the SDK prints warnings to stderr, out of every report: record them instead.
  const log = pulumi.log as unknown as { warn: typeof pulumi.log.warn };
  const warn = log.warn;
  const target = active;
  const urns: Promise<void>[] = [];
  if (target)
    log.warn = (message, resource) => {
      const entry: ProgramWarning = { message };
      target.warnings.push(entry);
      if (resource)
        urns.push(
          (resource.urn as unknown as { promise(): Promise<string> }).promise().then(
            (urn) => {
              entry.urn = urn;
            },
            () => undefined,
          ),
        );
      return Promise.resolve();
    };
  try {
    await pulumi.runtime.runInPulumiStack(async () => program());
  } finally {
    await sdk.waitForRPCs();
    await Promise.all(urns);
    log.warn = warn;
    if (active === target) active = undefined;
    process.setSourceMapsEnabled(sourceMaps);
    Error.stackTraceLimit = limit;
  }
}
