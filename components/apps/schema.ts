/**
 * `platform:apps`: a team's first-party services, each built from its Dockerfile in this repository
 * and deployed like the platform's own workloads. The schema owns the checks that concern its
 * section, including the ones that read other sections (the mesh, the registry, the gateway).
 */
import { existsSync, statSync } from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { isSecretLikeArg } from "../images/service-image";
import type { InferenceConfig } from "../inference/schema";
import { MESH_CONTRACT } from "../meta";
import type { MeshConfig } from "../mesh/schema";
import type { RegistryConfig } from "../registry/schema";
import {
  canarySchema,
  dnsLabel,
  doc,
  duplicates,
  formatKey,
  hostname,
  replicas,
  reservedNamespaceProblems,
  resources,
  workloadProblems,
  type ConfigProblem,
} from "../schema-kit";

/** The Pulumi config namespace of an app's stack secrets: `pulumi config set --secret apps:<key>`. */
export const APP_SECRETS_NAMESPACE = "apps";

/** What an app that calls the gateway is given, by these names (the Vercel front end gets the same). */
export const GATEWAY_ENV = { url: "GATEWAY_URL", apiKey: "GATEWAY_API_KEY" } as const;

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name such as LOG_LEVEL");

/** A path inside the repository (`web`, `services/api/Dockerfile`); never absolute or escaping it. */
const repoPath = z
  .string()
  .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, "must be a path relative to the repository root")
  .refine((p) => !p.split("/").includes(".."), "must stay inside the repository");

/** An HTTP path on the app (probes, ingress prefix, metrics). */
const httpPath = z
  .string()
  .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/, "must be an HTTP path such as /healthz");

/** An absolute directory inside the container. */
const containerDir = z
  .string()
  .regex(/^\/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$/, "must be an absolute directory such as /app/.next/cache")
  .refine((p) => !p.split("/").includes(".."), "must not contain ..");

const port = z.number().int().min(1024).max(65535);

const appSecretSchema = z
  .strictObject({
    env: doc(envName, "Environment variable the secret is referenced as (secretKeyRef).", "SESSION_SECRET"),
    generate: doc(
      z.strictObject({ length: z.number().int().min(16).max(128).default(48) }).optional(),
      "Generate the value (@pulumi/random, kept in state as a secret).",
      { length: 48 },
    ),
    stackSecret: doc(
      z
        .string()
        .regex(/^[A-Za-z][A-Za-z0-9_]*$/, "must be a config key such as webStripeKey")
        .optional(),
      `A stack secret: \`pulumi config set --secret ${APP_SECRETS_NAMESPACE}:<key> <value>\`.`,
      "webStripeKey",
    ),
  })
  .refine((s) => (s.generate === undefined) !== (s.stackSecret === undefined), {
    message: "set exactly one of generate and stackSecret",
  });

export const appSchema = z.strictObject({
  name: doc(dnsLabel, "App name, DNS-safe and unique: its Deployment, Service and image.", "web"),
  context: doc(repoPath, "Build context, relative to the repository root.", "web"),
  dockerfile: doc(
    repoPath.optional(),
    "Dockerfile, relative to the repository root (default: <context>/Dockerfile).",
    "web/Dockerfile",
  ),
  target: doc(
    z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "must be a stage name")
      .optional(),
    "Final stage to build (multi-stage target).",
    "runtime",
  ),
  buildArgs: doc(
    z.record(envName, z.string()).default({}),
    "Non-secret build args (stored in the image and its provenance: secret-looking names are refused).",
    { NEXT_TELEMETRY_DISABLED: "1" },
  ),
  port: doc(port.default(8080), "Port the app listens on.", 3000),
  runAsUser: doc(
    z.number().int().min(1).max(2147483647).default(65532),
    "Non-root UID the container runs as (distroless nonroot: 65532).",
    65532,
  ),
  probes: doc(
    z
      .strictObject({
        readiness: httpPath.default("/healthz"),
        liveness: httpPath.optional(),
        startupSeconds: z.number().int().min(5).max(600).default(60),
      })
      .default({ readiness: "/healthz", startupSeconds: 60 }),
    "HTTP probes on the app port: readiness, liveness (default: the readiness path), and how long a start may take.",
    { readiness: "/api/health", startupSeconds: 60 },
  ),
  resources: doc(
    resources.default({ cpu: "100m", memory: "256Mi" }),
    "CPU and memory requests (memory is also the limit).",
    {
      cpu: "250m",
      memory: "512Mi",
    },
  ),
  replicas: doc(replicas, "Autoscaling bounds.", { min: 2, max: 6 }),
  writablePaths: doc(
    z.array(containerDir).default([]),
    "Directories the app writes (an emptyDir each; the root filesystem is read-only and /tmp is always writable).",
    ["/app/.next/cache"],
  ),
  env: doc(
    z.record(envName, z.string()).default({}),
    "Plain, non-secret environment (secret-looking names are refused: use `secrets`).",
    { LOG_LEVEL: "info" },
  ),
  secrets: doc(
    z.array(appSecretSchema).default([]),
    "Secrets by reference only: each lands in the app's Kubernetes Secret and is referenced from its env.",
    [{ env: "SESSION_SECRET", generate: { length: 48 } }],
  ),
  callsGateway: doc(
    z.boolean().default(false),
    `Call the inference gateway: ${GATEWAY_ENV.url} (in-cluster) and ${GATEWAY_ENV.apiKey} (a key generated for this app, in its Secret), and the mesh allow to reach it.`,
    true,
  ),
  ingress: doc(
    z.strictObject({ hostname, path: httpPath.default("/") }).optional(),
    "Route on the mesh ingress Gateway by hostname and path prefix (TLS; unset: in-cluster only).",
    { hostname: "chat.example.org", path: "/" },
  ),
  metrics: doc(
    z.strictObject({ port: port.optional(), path: httpPath.default("/metrics") }).optional(),
    "The app's Prometheus endpoint (port default: the app port): a ServiceMonitor scrapes it.",
    { path: "/metrics" },
  ),
  canary: doc(
    canarySchema,
    "Flagger canary with automatic rollback on the same SLOs as models (platform:monitoring.slo; needs the mesh and Flagger).",
    { enabled: true, stepWeight: 20, maxWeight: 60 },
  ),
});

export const appsSchema = z.strictObject({
  namespace: doc(
    dnsLabel.default("apps"),
    "Namespace of the apps (mesh-injected, restricted Pod Security).",
    "apps",
  ),
  services: doc(z.array(appSchema).default([]), "First-party apps.", [
    {
      name: "web",
      context: "web",
      port: 3000,
      probes: { readiness: "/api/health" },
      writablePaths: ["/app/.next/cache"],
      callsGateway: true,
      ingress: { hostname: "chat.example.org" },
    },
  ]),
});
export type AppsConfig = z.infer<typeof appsSchema>;
export type AppConfig = z.infer<typeof appSchema>;

/** The Dockerfile an app builds, relative to the repository root. */
export function appDockerfile(a: Pick<AppConfig, "context" | "dockerfile">): string {
  return a.dockerfile ?? path.posix.join(a.context, "Dockerfile");
}

/** The port Prometheus scrapes, and whether it is the app port (then under the mesh's mTLS). */
export function metricsPort(a: Pick<AppConfig, "port" | "metrics">): number | undefined {
  return a.metrics ? (a.metrics.port ?? a.port) : undefined;
}

/** Stack secrets the apps reference, with the key path that references each. */
export function appStackSecrets(apps: AppsConfig): { readonly configKey: string; readonly path: string }[] {
  return apps.services.flatMap((a, i) =>
    a.secrets.flatMap((s, si) =>
      s.stackSecret
        ? [
            {
              configKey: `${APP_SECRETS_NAMESPACE}:${s.stackSecret}`,
              path: formatKey(["apps", "services", i, "secrets", si, "stackSecret"]),
            },
          ]
        : [],
    ),
  );
}

/** What the apps checks read of the other sections, and of the checkout. */
export interface AppsInputs {
  readonly apps: AppsConfig;
  readonly mesh: Pick<MeshConfig, "enabled" | "flagger" | "ingressHostname">;
  readonly registry: Pick<RegistryConfig, "enabled" | "mode" | "hostname">;
  readonly inference: Pick<InferenceConfig, "namespace" | "services"> & {
    readonly gateway: Pick<InferenceConfig["gateway"], "enabled">;
  };
}

/** Where repository paths are resolved (the checkout `pulumi` runs in). */
export interface Checkout {
  readonly root: string;
  /** Full config keys that are set (stack secrets an app references must be). */
  readonly configKeys: ReadonlySet<string>;
}

function isDir(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

/** Checks of `platform:apps`: each app against the checkout, the mesh, the registry and the gateway. */
export function appsChecks(c: AppsInputs, checkout: Checkout): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const { apps } = c;
  if (apps.services.length === 0) return out;
  const key = (...p: PropertyKey[]) => formatKey(["apps", ...p]);

  out.push(...reservedNamespaceProblems(["apps", "namespace"], apps.namespace));
  if (apps.namespace === c.inference.namespace)
    out.push({
      key: key("namespace"),
      message: `must differ from platform:inference.namespace ("${c.inference.namespace}"): apps get their own default-deny and allows`,
      example: '"apps"',
    });
  if (!c.registry.enabled)
    out.push({
      key: formatKey(["registry", "enabled"]),
      message:
        "apps are built and pushed to the registry; enable the registry or remove platform:apps.services",
      example: "true",
    });
  for (const [name, idx] of duplicates(apps.services, (a) => a.name))
    out.push({ key: key("services", idx[1]!, "name"), message: `duplicate app name "${name}"` });
  const routes = apps.services.flatMap((a, i) =>
    a.ingress ? [{ i, route: `${a.ingress.hostname}${a.ingress.path}` }] : [],
  );
  for (const [route, idx] of duplicates(routes, (r) => r.route))
    out.push({
      key: key("services", routes[idx[1]!]!.i, "ingress"),
      message: `${route} is routed to another app already; give each app its own hostname or path`,
    });

  apps.services.forEach((a, i) => {
    const path_ = ["apps", "services", i] as const;
    const at = (...rest: PropertyKey[]) => formatKey([...path_, ...rest]);
    if (!isDir(path.join(checkout.root, a.context)))
      out.push({
        key: at("context"),
        message: `"${a.context}" is not a directory of the repository`,
        example: '"web"',
      });
    else if (!existsSync(path.join(checkout.root, appDockerfile(a))))
      out.push({
        key: at(a.dockerfile ? "dockerfile" : "context"),
        message: `no Dockerfile at ${appDockerfile(a)}; add one or set dockerfile`,
        example: JSON.stringify(path.posix.join(a.context, "Dockerfile")),
      });
    for (const name of Object.keys(a.buildArgs).filter(isSecretLikeArg))
      out.push({
        key: at("buildArgs", name),
        message:
          "looks like a secret: build args are stored in the image and its provenance; use a BuildKit secret mount outside Pulumi or a runtime secret",
      });
    for (const name of Object.keys(a.env).filter(isSecretLikeArg))
      out.push({
        key: at("env", name),
        message:
          "looks like a secret: env values are plain text in the Deployment; reference it from secrets instead",
        example: JSON.stringify({ env: name, stackSecret: "myAppKey" }),
      });
    const names = [
      ...Object.keys(a.env).map((n) => ({ n, where: at("env", n) })),
      ...a.secrets.map((s, si) => ({ n: s.env, where: at("secrets", si, "env") })),
      ...(a.callsGateway ? Object.values(GATEWAY_ENV).map((n) => ({ n, where: at("callsGateway") })) : []),
    ];
    for (const [n, idx] of duplicates(names, (x) => x.n))
      out.push({ key: names[idx[1]!]!.where, message: `environment variable ${n} is set twice` });
    a.secrets.forEach((s, si) => {
      const configKey = `${APP_SECRETS_NAMESPACE}:${s.stackSecret ?? ""}`;
      if (s.stackSecret && !checkout.configKeys.has(configKey))
        out.push({
          key: at("secrets", si, "stackSecret"),
          message: `stack secret ${configKey} is not set; set it with \`pulumi config set --secret ${configKey} <value>\``,
        });
    });
    for (const [dir, idx] of duplicates(a.writablePaths, (p) => p))
      out.push({ key: at("writablePaths", idx[1]!), message: `${dir} is listed twice` });
    a.writablePaths.forEach((p, pi) => {
      if (p === "/tmp")
        out.push({ key: at("writablePaths", pi), message: "/tmp is always writable; remove it" });
    });
    out.push(...workloadProblems(path_, a, { mesh: c.mesh.enabled, flagger: c.mesh.flagger }));
    if (a.callsGateway && !c.inference.gateway.enabled)
      out.push({
        key: at("callsGateway"),
        message:
          "the inference gateway is off (platform:inference.gateway.enabled); enable it or set callsGateway to false",
      });
    else if (a.callsGateway && c.inference.services.length === 0)
      out.push({
        key: at("callsGateway"),
        message: "the gateway runs only with a model to relay to; add one to platform:inference.services",
      });
    if (a.ingress) {
      if (!c.mesh.enabled)
        out.push({
          key: at("ingress"),
          message: "ingress is the mesh's Gateway; set platform:mesh.enabled to true or remove ingress",
        });
      if (a.ingress.hostname === c.mesh.ingressHostname)
        out.push({
          key: at("ingress", "hostname"),
          message: `platform:mesh.ingressHostname ("${c.mesh.ingressHostname}") routes everything to the inference gateway; give the app its own hostname`,
          example: JSON.stringify(`chat.${c.mesh.ingressHostname}`),
        });
      if (
        c.registry.enabled &&
        c.registry.mode === "in-cluster" &&
        a.ingress.hostname === c.registry.hostname
      )
        out.push({
          key: at("ingress", "hostname"),
          message: `must differ from platform:registry.hostname ("${c.registry.hostname}"), which the registry serves itself (SNI passthrough)`,
        });
    }
    const mp = metricsPort(a);
    if (
      a.metrics &&
      c.mesh.enabled &&
      mp === a.port &&
      !(MESH_CONTRACT.metricsPaths as readonly string[]).includes(a.metrics.path)
    )
      out.push({
        key: at("metrics", "path"),
        message: `under the mesh Prometheus may GET only ${MESH_CONTRACT.metricsPaths.join(", ")} on the app port; serve metrics there or on a separate metrics.port`,
        example: '"/metrics"',
      });
    if (a.metrics?.port !== undefined && a.metrics.port === a.port)
      out.push({
        key: at("metrics", "port"),
        message: "is the app port; leave it unset to scrape the app port",
      });
  });
  return out;
}
