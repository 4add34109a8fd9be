import * as pulumi from "@pulumi/pulumi";
import type { ClusterHandle } from "../cluster/handle";
import { poolCapacity } from "../cluster/handle";
import { ConfigError } from "../config";
import { sloSchema, type SloConfig } from "../monitoring/schema";
import type { Environment } from "../schema-kit";
import type { SecretStore } from "../secrets/store";
import { coldStartRetries, hasActivation, modelScaling, type ScalingPlatform } from "./autoscaling";
import { InferenceGateway } from "./gateway";
import type { InferenceConfig } from "./schema";
import { InferenceService } from "./service";
import { resolveServiceSlo } from "./slo";
import { deploymentStartBudgetSeconds, HF_TOKEN_KEY, modelUrl, peakGpus } from "./spec";

export interface InferenceStackArgs {
  readonly cluster: ClusterHandle;
  /** Workload namespace (created by the Platform, mesh-injected, restricted). */
  readonly namespace: string;
  readonly environment: Environment;
  /** `platform:inference` (gateway.hostname already resolved). */
  readonly config: InferenceConfig;
  readonly secretStore: SecretStore;
  /** Stack secrets this component may use. */
  readonly secrets: { readonly hfToken?: pulumi.Output<string> };
  /** Istio is installed: mesh routing, and canaries through Flagger. */
  readonly mesh: boolean;
  /** The Prometheus operator's CRDs exist: ServiceMonitors. */
  readonly monitoring: boolean;
  /** The gateway image (the registry's repoDigest); required when the gateway is enabled. */
  readonly gatewayImage?: pulumi.Input<string>;
  /** ServiceAccount with the registry's imagePullSecrets (model servers). */
  readonly serviceAccountName?: string;
  /** The registry's pull secret in the namespace (the gateway's own service accounts carry it). */
  readonly imagePullSecret?: string;
  /** platform:monitoring.slo: the defaults of every service's `slo`. */
  readonly slo?: Pick<
    SloConfig,
    "timeToFirstTokenMs" | "interTokenLatencyMs" | "errorRatePercent" | "queueWaitMs"
  >;
  /** First-party callers of the gateway, each given a key of its own (InferenceGateway.clients). */
  readonly gatewayClients?: readonly string[];
  /** What must exist first (mesh + Flagger, monitoring CRDs, namespaces). */
  readonly dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/**
 * Pools whose peak GPU demand (max replicas + a running canary) exceeds their slices. That only
 * leaves pods Pending, so it is a warning; GPU memory that does not fit is a config error (config.ts).
 */
export function overcommittedPools(
  config: InferenceConfig,
  pools: ClusterHandle["gpuPools"],
): { pool: string; peak: number; capacity: number }[] {
  const out: { pool: string; peak: number; capacity: number }[] = [];
  for (const pool of pools) {
    const peak = config.services
      .filter((s) => s.gpu?.pool === pool.name)
      .reduce((sum, s) => sum + peakGpus(s), 0);
    const capacity = poolCapacity(pool);
    if (peak > capacity) out.push({ pool: pool.name, peak, capacity });
  }
  return out;
}

/** The model hub token when a service needs it; a ConfigError naming the key when it is not set. */
export function hubToken(
  config: Pick<InferenceConfig, "services">,
  secrets: InferenceStackArgs["secrets"],
): pulumi.Output<string> | undefined {
  if (!config.services.some((s) => s.hubTokenSecret)) return undefined;
  if (!secrets.hfToken)
    throw new ConfigError([
      {
        key: "platform:hfToken",
        message:
          "secret is required by services with hubTokenSecret; set it with `pulumi config set --secret platform:hfToken <token>`",
      },
    ]);
  return secrets.hfToken;
}

/** Every model service of the stack, plus the gateway in front of them. */
export class InferenceStack extends pulumi.ComponentResource {
  /** Served model names. */
  public readonly models: string[];
  /** Public gateway URL (undefined without the gateway). */
  public readonly gatewayUrl?: string;
  /** The generated gateway API key (secret), for the front end. */
  public readonly gatewayApiKey?: pulumi.Output<string>;
  /** The gateway's in-cluster URL (undefined without the gateway). */
  public readonly gatewayInternalUrl?: string;
  /** The key the gateway generated for each of `gatewayClients` (secret). */
  public readonly gatewayClientKeys: Readonly<Record<string, pulumi.Output<string>>> = {};
  public readonly services: InferenceService[];

  constructor(name: string, args: InferenceStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:inference:InferenceStack", name, {}, opts);
    const { config, namespace: ns, cluster } = args;
    const provider = cluster.provider;
    const deps = [...cluster.ready, ...(args.dependsOn ?? [])];

    const pools = new Map(cluster.gpuPools.map((p) => [p.name, p]));
    const missing = config.services.flatMap((s, i) =>
      s.gpu && !pools.has(s.gpu.pool)
        ? [
            {
              key: `platform:inference.services[${i}].gpu.pool`,
              message: `no GPU pool "${s.gpu.pool}" in the cluster; pools: ${[...pools.keys()].join(", ") || "(none)"}`,
            },
          ]
        : [],
    );
    if (missing.length > 0) throw new ConfigError(missing);
    for (const o of overcommittedPools(config, cluster.gpuPools))
      void pulumi.log.warn(
        `GPU pool "${o.pool}" may need ${o.peak} GPUs at peak (max replicas plus canaries) but has ${o.capacity}`,
        this,
      );

    const token = hubToken(config, args.secrets);
    const hubTokenRef = token
      ? args.secretStore.secret("hf-token", ns, { [HF_TOKEN_KEY]: token }, { component: "model-server" })
      : undefined;

    const first = config.services[0];
    const withGateway = config.gateway.enabled && first !== undefined;
    const platform: ScalingPlatform = {
      environment: args.environment,
      keda: withGateway,
      prometheus: args.monitoring,
    };
    const scalingOf = (s: InferenceConfig["services"][number]) =>
      modelScaling(s, platform, hasActivation(config, s, platform));
    const firstScaling = first ? scalingOf(first) : undefined;

    // The gateway first: it installs KEDA, whose CRDs every model's ScaledObject needs.
    let gateway: InferenceGateway | undefined;
    if (config.gateway.enabled && !first)
      void pulumi.log.warn("inference gateway skipped: no model service to relay to", this);
    if (withGateway) {
      if (!args.gatewayImage) throw new Error("the inference gateway needs its image (gatewayImage)");
      gateway = new InferenceGateway(
        `${name}-gateway`,
        {
          config: config.gateway,
          namespace: ns,
          environment: args.environment,
          provider,
          secretStore: args.secretStore,
          image: args.gatewayImage,
          // The gateway relays to one backend: the first service.
          backendUrl: modelUrl(first, ns),
          models: [first.name],
          // A backend that idles at zero replicas: jobs wait out its cold start.
          ...(firstScaling?.kind === "keda" && firstScaling.activationWindowSeconds !== undefined
            ? { workerRetries: coldStartRetries(deploymentStartBudgetSeconds(first)) }
            : {}),
          mesh: args.mesh,
          monitoring: args.monitoring,
          ...(args.imagePullSecret ? { imagePullSecret: args.imagePullSecret } : {}),
          ...(args.gatewayClients?.length ? { clients: args.gatewayClients } : {}),
          dependsOn: deps,
        },
        { parent: this },
      );
      this.gatewayUrl = gateway.url;
      this.gatewayApiKey = gateway.apiKey;
      this.gatewayInternalUrl = gateway.internalUrl;
      this.gatewayClientKeys = gateway.clientKeys;
    }

    const platformSlo = args.slo ?? sloSchema.parse({});
    this.services = config.services.map(
      (s) =>
        new InferenceService(
          `${name}-${s.name}`,
          {
            config: s,
            namespace: ns,
            environment: args.environment,
            provider,
            mesh: args.mesh,
            monitoring: args.monitoring,
            slo: resolveServiceSlo(s, platformSlo),
            scaling: s === first && firstScaling ? firstScaling : scalingOf(s),
            ...(gateway ? { autoscalerDependsOn: [gateway.keda] } : {}),
            ...(s.gpu ? { pool: pools.get(s.gpu.pool)! } : {}),
            ...(hubTokenRef && s.hubTokenSecret ? { hubTokenSecret: hubTokenRef.name } : {}),
            ...(args.serviceAccountName ? { serviceAccountName: args.serviceAccountName } : {}),
            dependsOn: [...deps, ...(hubTokenRef ? [hubTokenRef.resource] : [])],
          },
          { parent: this },
        ),
    );
    this.models = this.services.map((s) => s.modelName);

    this.registerOutputs({
      models: this.models,
      ...(this.gatewayUrl ? { gatewayUrl: this.gatewayUrl } : {}),
      ...(this.gatewayApiKey ? { gatewayApiKey: this.gatewayApiKey } : {}),
    });
  }
}
