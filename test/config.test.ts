import { existsSync, readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  ConfigError,
  ENVIRONMENTS,
  parsePlatformConfig,
  RESERVED_NAMESPACES,
  SECRET_KEY_NAMES,
  suggest,
} from "../components/config";
import { preflightStack, renderStack } from "./harness";
import { committedConfig } from "./stack-overrides";
import { listStacks, loadStackConfig } from "../tools/preflight/stack-config";

const STACKS = listStacks(process.cwd());

/** A minimal valid local config as Pulumi would hand it to the program. */
function base(): Record<string, unknown> {
  return {
    "platform:environment": "local",
    "platform:cluster": { kind: "existing" },
  };
}

function problemsOf(raw: Record<string, unknown>, secrets: string[] = []) {
  const flat = Object.fromEntries(
    Object.entries(raw).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  );
  try {
    parsePlatformConfig(flat, new Set(secrets));
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  return [];
}

const k3s = {
  kind: "k3s",
  apiEndpoint: "k3s.example.org",
  servers: [{ name: "s1", address: "10.0.0.10" }],
  pools: [
    { name: "gpu", kind: "gpu", hosts: [{ name: "g1", address: "10.0.0.20" }], gpu: { gpusPerNode: 2 } },
  ],
};

describe("committed stacks", () => {
  it("has a stack of every tier", () => {
    const tiers = STACKS.map((s) => {
      const sc = loadStackConfig(process.cwd(), s);
      return parsePlatformConfig(sc.config, new Set(SECRET_KEY_NAMES)).environment;
    });
    expect([...new Set(tiers)].sort()).toEqual([...ENVIRONMENTS].sort());
  });

  it.each(STACKS)(
    "%s parses with every secret planted, and names its tier (stack names are free)",
    (stack) => {
      const sc = loadStackConfig(process.cwd(), stack);
      const secrets = new Set(sc.secretKeys.map((k) => k.replace(/^platform:/, "")));
      const config = parsePlatformConfig(sc.config, secrets);
      expect(ENVIRONMENTS).toContain(config.environment);
    },
  );

  it("applies documented defaults", () => {
    const flat = Object.fromEntries(
      Object.entries(base()).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
    );
    const c = parsePlatformConfig(flat);
    expect(c.mesh.enabled).toBe(true);
    expect(c.registry.mode).toBe("in-cluster");
    expect(c.delivery.github.enabled).toBe(false);
    expect(c.monitoring.retention).toBe("2d");
  });
});

// Each case: a malformed config and the key path the error must name.
const BAD: [string, Record<string, unknown>, string, string[]?][] = [
  ["typo'd top-level key", { ...base(), "platform:monitorng": { enabled: true } }, "platform:monitorng"],
  ["typo'd nested key", { ...base(), "platform:mesh": { enabld: true } }, "platform:mesh.enabld"],
  ["wrong type", { ...base(), "platform:mesh": { enabled: "yes" } }, "platform:mesh.enabled"],
  ["missing required key", { "platform:cluster": { kind: "existing" } }, "platform:environment"],
  ["bad enum", { ...base(), "platform:environment": "qa" }, "platform:environment"],
  ["unknown cluster kind", { ...base(), "platform:cluster": { kind: "eks" } }, "platform:cluster.kind"],
  [
    "bad host address",
    { ...base(), "platform:cluster": { ...k3s, servers: [{ name: "s1", address: "10.0.0.300!" }] } },
    "platform:cluster.servers[0].address",
    ["sshPrivateKey"],
  ],
  [
    "two servers",
    {
      ...base(),
      "platform:cluster": {
        ...k3s,
        servers: [
          { name: "s1", address: "10.0.0.10" },
          { name: "s2", address: "10.0.0.11" },
        ],
      },
    },
    "platform:cluster.servers",
    ["sshPrivateKey"],
  ],
  [
    "duplicate host addresses",
    {
      ...base(),
      "platform:cluster": { ...k3s, pools: [{ name: "cpu", hosts: [{ name: "c1", address: "10.0.0.10" }] }] },
    },
    "platform:cluster.pools[0].hosts[0].address",
    ["sshPrivateKey"],
  ],
  [
    "duplicate pool names",
    {
      ...base(),
      "platform:cluster": {
        ...k3s,
        pools: [k3s.pools[0], { ...k3s.pools[0], hosts: [{ name: "g2", address: "10.0.0.21" }] }],
      },
    },
    "platform:cluster.pools[1].name",
    ["sshPrivateKey"],
  ],
  [
    "pool name not DNS-safe",
    { ...base(), "platform:cluster": { ...k3s, pools: [{ ...k3s.pools[0], name: "GPU_Pool" }] } },
    "platform:cluster.pools[0].name",
    ["sshPrivateKey"],
  ],
  [
    "gpu pool without gpu spec",
    {
      ...base(),
      "platform:cluster": {
        ...k3s,
        pools: [{ name: "gpu", kind: "gpu", hosts: [{ name: "g1", address: "10.0.0.20" }] }],
      },
    },
    "platform:cluster.pools[0].gpu",
    ["sshPrivateKey"],
  ],
  [
    "time-slicing and MIG together",
    {
      ...base(),
      "platform:cluster": {
        ...k3s,
        pools: [
          {
            ...k3s.pools[0],
            gpu: {
              gpusPerNode: 1,
              sharing: { timeSlicing: { replicas: 2 }, mig: { strategy: "single", profile: "all-1g.10gb" } },
            },
          },
        ],
      },
    },
    "platform:cluster.pools[0].gpu.sharing",
    ["sshPrivateKey"],
  ],
  ["missing SSH key secret", { ...base(), "platform:cluster": k3s }, "platform:sshPrivateKey"],
  [
    "GPU service on unknown pool",
    {
      ...base(),
      "platform:cluster": k3s,
      "platform:inference": {
        services: [{ name: "m", runtime: "vllm", model: "x", gpu: { pool: "nope", count: 1 } }],
      },
    },
    "platform:inference.services[0].gpu.pool",
    ["sshPrivateKey"],
  ],
  [
    "GPU count above the pool's per-node GPUs",
    {
      ...base(),
      "platform:cluster": k3s,
      "platform:inference": {
        services: [{ name: "m", runtime: "vllm", model: "x", gpu: { pool: "gpu", count: 4 } }],
      },
    },
    "platform:inference.services[0].gpu.count",
    ["sshPrivateKey"],
  ],
  [
    "min replicas above max",
    {
      ...base(),
      "platform:inference": {
        services: [{ name: "m", runtime: "llamacpp", model: "x", replicas: { min: 3, max: 2 } }],
      },
    },
    "platform:inference.services[0].replicas.min",
  ],
  [
    "canary without the mesh",
    {
      ...base(),
      "platform:mesh": { enabled: false },
      "platform:inference": {
        services: [{ name: "m", runtime: "llamacpp", model: "x", canary: { enabled: true } }],
      },
    },
    "platform:inference.services[0].canary.enabled",
  ],
  [
    "unknown runtime",
    { ...base(), "platform:inference": { services: [{ name: "m", runtime: "tgi", model: "x" }] } },
    "platform:inference.services[0].runtime",
  ],
  [
    "duplicate service names",
    {
      ...base(),
      "platform:inference": {
        services: [
          { name: "m", runtime: "llamacpp", model: "x" },
          { name: "m", runtime: "llamacpp", model: "y" },
        ],
      },
    },
    "platform:inference.services[1].name",
  ],
  [
    "bad quantity",
    { ...base(), "platform:registry": { storageSize: "20 gigs" } },
    "platform:registry.storageSize",
  ],
  [
    "acme without email",
    { ...base(), "platform:registry": { tls: { issuer: "acme" } } },
    "platform:tls.acme",
  ],
  [
    "github on without owner",
    { ...base(), "platform:delivery": { github: { enabled: true, repository: "r" } } },
    "platform:delivery.github.owner",
    ["githubToken", "pulumiAccessToken"],
  ],
  [
    "gateway hostname other than the ingress hostname",
    { ...base(), "platform:inference": { gateway: { hostname: "api.example.org" } } },
    "platform:inference.gateway.hostname",
  ],
  [
    "workload namespace taken by the platform",
    { ...base(), "platform:inference": { namespace: "monitoring" } },
    "platform:inference.namespace",
  ],
  [
    "registry and workloads in one namespace",
    { ...base(), "platform:inference": { namespace: "apps" }, "platform:registry": { namespace: "apps" } },
    "platform:registry.namespace",
  ],
  [
    "hub token on a llama.cpp service",
    {
      ...base(),
      "platform:inference": {
        services: [{ name: "m", runtime: "llamacpp", model: "x", hubTokenSecret: true }],
      },
    },
    "platform:inference.services[0].hubTokenSecret",
    ["hfToken"],
  ],
  [
    "several slices of a time-sliced GPU",
    {
      ...base(),
      "platform:cluster": {
        ...k3s,
        pools: [{ ...k3s.pools[0], gpu: { gpusPerNode: 2, sharing: { timeSlicing: { replicas: 4 } } } }],
      },
      "platform:inference": {
        services: [{ name: "m", runtime: "vllm", model: "x", gpu: { pool: "gpu", count: 2 } }],
      },
    },
    "platform:inference.services[0].gpu.count",
    ["sshPrivateKey"],
  ],
];

describe("malformed configs", () => {
  it.each(BAD)("rejects %s naming the key", (_label, raw, key, secrets) => {
    const problems = problemsOf(raw, secrets);
    expect(problems.map((p) => p.key)).toContain(key);
  });

  it("reports every problem at once", () => {
    const problems = problemsOf({
      ...base(),
      "platform:environment": "qa",
      "platform:mesh": { enabld: true },
      "platform:registry": { storageSize: "lots" },
    });
    expect(problems.map((p) => p.key).sort()).toEqual(
      ["platform:environment", "platform:mesh.enabld", "platform:registry.storageSize"].sort(),
    );
  });

  it("suggests the key a typo meant and gives examples", () => {
    const [typo] = problemsOf({ ...base(), "platform:mesh": { enabld: true } });
    expect(typo!.message).toContain('did you mean "enabled"');
    const [quantity] = problemsOf({ ...base(), "platform:registry": { storageSize: "lots" } });
    expect(quantity!.example).toBe('"50Gi"');
    expect(suggest("monitorng", ["monitoring", "mesh"])).toBe("monitoring");
  });

  it("registers nothing when the config is bad", async () => {
    const result = await preflightStack("local", {
      overrides: { "platform:mesh": { enabld: true }, "platform:environment": "qa" },
    });
    expect(result.kind).toBe("config-error");
    if (result.kind !== "config-error") return;
    expect(result.registered).toBe(0);
    expect(result.problems).toHaveLength(2);
  });
});

describe("namespaces", () => {
  it.each(STACKS)(
    "%s creates each namespace once, workload namespaces outside the reserved list",
    async (stack) => {
      const { plan } = await renderStack(stack);
      const names = plan.resources
        .filter((r) => r.type === "kubernetes:core/v1:Namespace")
        .map((r) => (r.inputs as { metadata: { name: string } }).metadata.name);
      expect(new Set(names).size).toBe(names.length);
      const c = committedConfig(stack);
      const owned = [
        c.inference.namespace,
        c.registry.namespace,
        ...(c.apps.services.length ? [c.apps.namespace] : []),
      ];
      for (const ns of names) if (!owned.includes(ns)) expect(RESERVED_NAMESPACES).toContain(ns);
    },
  );
});

describe("config shape", () => {
  const schemas = readdirSync("components", { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(`components/${d.name}/schema.ts`))
    .map((d) => `components/${d.name}/schema.ts`);

  it("every module schema owns its section and never imports config.ts back", () => {
    expect(schemas.length).toBeGreaterThan(8);
    for (const file of schemas) expect(readFileSync(file, "utf8"), file).not.toMatch(/from "\.\.\/config"/);
  });

  it("config.ts only composes: no check of its own beyond the modules' and the secret keys", () => {
    const text = readFileSync("components/config.ts", "utf8");
    const body = text.slice(
      text.indexOf("export function crossChecks"),
      text.indexOf("export function parsePlatformConfig"),
    );
    expect(body).not.toMatch(/out\.push|forEach|for \(/);
    for (const owner of [
      "clusterChecks",
      "inferenceChecks",
      "registryChecks",
      "appsChecks",
      "tlsChecks",
      "deliveryChecks",
      "secretsChecks",
    ])
      expect(body).toContain(`${owner}(`);
  });
});
