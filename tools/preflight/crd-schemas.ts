/**
 * Schemas the project writes itself for custom kinds no schema package covers: Flagger's Canary and
 * MetricTemplate (flagger.app/v1beta1). Written from the fields Flagger's CRDs document at the
 * pinned chart (components/versions.ts), as JSON Schema for ajv. Objects the CRD closes (the API
 * server prunes what they do not declare) refuse unknown fields here, so a typo fails the preflight
 * instead of vanishing on apply; the open parts (the route's Istio pieces) are only typed.
 */
import Ajv, { type ErrorObject, type ValidateFunction } from "ajv";

type Schema = Record<string, unknown>;

const str = { type: "string" } as const;
const num = { type: "number" } as const;
const bool = { type: "boolean" } as const;
const int = { type: "integer" } as const;
const strings = { type: "array", items: str } as const;
const stringMap = { type: "object", additionalProperties: str } as const;
const anyObject = { type: "object" } as const;
/** Flagger's durations: a number of seconds or minutes (`30s`, `1m`). */
const interval = { type: "string", pattern: "^[0-9]+(m|s)" } as const;

const closed = (properties: Record<string, unknown>, required: string[] = []): Schema => ({
  type: "object",
  additionalProperties: false,
  properties,
  ...(required.length ? { required } : {}),
});

const ref = (kinds?: string[]): Schema =>
  closed(
    { apiVersion: str, kind: kinds ? { type: "string", enum: kinds } : str, name: str, namespace: str },
    ["apiVersion", "kind", "name"],
  );

const metric = closed(
  {
    name: str,
    interval,
    threshold: num,
    thresholdRange: closed({ min: num, max: num }),
    query: str,
    templateRef: closed({ name: str, namespace: str }, ["name"]),
    templateVariables: stringMap,
  },
  ["name"],
);

const analysis: Schema = {
  type: "object",
  // Flagger's three strategies: Blue/Green (iterations), progressive (stepWeight or stepWeights).
  oneOf: [
    { required: ["interval", "threshold", "iterations"] },
    { required: ["interval", "threshold", "stepWeight"] },
    { required: ["interval", "threshold", "stepWeights"] },
  ],
  properties: {
    interval,
    iterations: num,
    threshold: num,
    maxWeight: num,
    stepWeight: num,
    stepWeights: { type: "array", items: num },
    stepWeightPromotion: num,
    mirror: bool,
    mirrorWeight: num,
    primaryReadyThreshold: num,
    canaryReadyThreshold: num,
    match: { type: "array", items: anyObject },
    metrics: { type: "array", items: metric },
    alerts: { type: "array", items: anyObject },
    webhooks: { type: "array", items: anyObject },
    sessionAffinity: anyObject,
  },
};

const service: Schema = {
  type: "object",
  required: ["port"],
  properties: {
    name: str,
    port: num,
    portName: str,
    appProtocol: str,
    targetPort: { type: ["integer", "string"] },
    portDiscovery: bool,
    headless: bool,
    timeout: str,
    hosts: strings,
    gateways: strings,
    match: { type: "array", items: anyObject },
    retries: closed({ attempts: int, perTryTimeout: str, retryOn: str }),
    rewrite: anyObject,
    headers: anyObject,
    corsPolicy: anyObject,
    trafficPolicy: anyObject,
    apex: anyObject,
    primary: anyObject,
    canary: anyObject,
  },
};

const object = (spec: Schema, kind: string): Schema => ({
  type: "object",
  required: ["apiVersion", "kind", "spec"],
  properties: {
    apiVersion: { const: "flagger.app/v1beta1" },
    kind: { const: kind },
    metadata: anyObject,
    spec,
  },
});

/** Schemas by `apiVersion/kind`. */
const SCHEMAS: Record<string, Schema> = {
  "flagger.app/v1beta1/Canary": object(
    {
      type: "object",
      required: ["targetRef", "analysis"],
      properties: {
        provider: str,
        metricsServer: str,
        progressDeadlineSeconds: num,
        targetRef: ref(["DaemonSet", "Deployment", "Service"]),
        autoscalerRef: closed(
          {
            apiVersion: str,
            kind: { type: "string", enum: ["HorizontalPodAutoscaler", "ScaledObject"] },
            name: str,
            primaryScalerQueries: stringMap,
            primaryScalerReplicas: closed({
              minReplicas: { type: "integer", minimum: 1 },
              maxReplicas: { type: "integer", minimum: 1 },
            }),
          },
          ["apiVersion", "kind", "name"],
        ),
        ingressRef: ref(["Ingress"]),
        routeRef: ref(),
        upstreamRef: ref(),
        service,
        skipAnalysis: bool,
        revertOnDeletion: bool,
        suspend: bool,
        analysis,
      },
    },
    "Canary",
  ),
  "flagger.app/v1beta1/MetricTemplate": object(
    closed(
      {
        provider: closed(
          {
            type: {
              type: "string",
              enum: [
                "prometheus",
                "influxdb",
                "datadog",
                "externalmetrics",
                "stackdriver",
                "cloudwatch",
                "newrelic",
                "graphite",
                "dynatrace",
                "keptn",
                "splunk",
              ],
            },
            address: str,
            headers: { type: "object", additionalProperties: strings },
            secretRef: closed({ name: str }, ["name"]),
            region: str,
            insecureSkipVerify: bool,
          },
          ["type"],
        ),
        query: str,
      },
      ["provider", "query"],
    ),
    "MetricTemplate",
  ),
};

let ajv: Ajv | undefined;
const compiled = new Map<string, ValidateFunction>();

function describeError(e: ErrorObject): string {
  const at = `data${e.instancePath}`;
  if (e.keyword === "additionalProperties")
    return `${at} has unknown field "${String((e.params as { additionalProperty: string }).additionalProperty)}"`;
  return `${at} ${e.message ?? "is invalid"}`;
}

/** A model class (as schemas.ts loads them) for a project-written schema, or null. */
export function projectModel(
  apiVersion: string,
  kind: string,
): (new (data: Record<string, unknown>) => { validate(): void }) | null {
  const id = `${apiVersion}/${kind}`;
  const schema = SCHEMAS[id];
  if (!schema) return null;
  let check = compiled.get(id);
  if (!check) {
    // oneOf branches name required keys the parent declares (strictRequired wants them redeclared).
    ajv ??= new Ajv({ strict: true, strictRequired: false, allowUnionTypes: true });
    check = ajv.compile(schema);
    compiled.set(id, check);
  }
  const validateData = check;
  return class {
    constructor(private readonly data: Record<string, unknown>) {}
    validate(): void {
      if (!validateData(this.data)) throw new Error(describeError(validateData.errors![0]!));
    }
  };
}

/** The kinds this module has a schema for (`apiVersion/kind`). */
export const PROJECT_SCHEMA_KINDS: readonly string[] = Object.keys(SCHEMAS);
