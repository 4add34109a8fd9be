import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  ConfigError,
  ENVIRONMENTS,
  parsePlatformConfig,
  platformSchema,
  PROJECT_NAME,
  PROVIDER_NAMESPACES,
  RESERVED_NAMESPACES,
  SECRET_KEY_NAMES,
  suggest,
} from "../components/config";
import { PART_OF } from "../components/meta";
import { preflightStack, renderStack } from "./harness";
import { committedConfig } from "./stack-overrides";
import { runStack } from "../tools/preflight/run";
import { listStacks, loadStackConfig, UsageError } from "../tools/preflight/stack-config";

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
    "IPv4 address out of range",
    { ...base(), "platform:cluster": { ...k3s, servers: [{ name: "s1", address: "10.20.0.300" }] } },
    "platform:cluster.servers[0].address",
    ["sshPrivateKey"],
  ],
  [
    "bad IPv6 TLS SAN",
    { ...base(), "platform:cluster": { ...k3s, tlsSans: ["fd00::1", "fd00::zz"] } },
    "platform:cluster.tlsSans[1]",
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

describe("host addresses", () => {
  const withAddress = (address: string) =>
    problemsOf({ ...base(), "platform:cluster": { ...k3s, servers: [{ name: "s1", address }] } }, [
      "sshPrivateKey",
    ]).filter((p) => p.key === "platform:cluster.servers[0].address");

  it("refuses digits and dots that are no IPv4 address, naming the key and the right form", () => {
    const [p] = withAddress("10.20.0.300");
    expect(p?.message).toBe(
      '"10.20.0.300" is not an IPv4 address: four numbers 0-255 separated by dots, such as 10.0.0.11',
    );
    expect(p?.example).toBe('"10.0.10.11"');
    expect(withAddress("10.20.0")).toHaveLength(1);
    expect(withAddress("fd00::zz")[0]?.message).toContain("is not an IPv6 address");
    expect(withAddress("edge_1")[0]?.message).toContain("must be an IP address or a DNS hostname");
  });

  it("accepts IPv4, IPv6 and hostnames", () => {
    for (const address of ["10.20.0.30", "fd00::11", "edge-1.example.org", "edge1"])
      expect(withAddress(address), address).toEqual([]);
  });
});

describe("keys outside platform:", () => {
  const keysOf = (extra: Record<string, unknown>) => problemsOf({ ...base(), ...extra });

  it("refuses a typo'd namespace, suggesting the platform key", () => {
    const [p] = keysOf({ "platfrom:mesh": { enabled: true } });
    expect(p).toMatchObject({ key: "platfrom:mesh" });
    expect(p!.message).toContain('unknown namespace "platfrom" (did you mean platform:mesh?)');
  });

  it("refuses an un-namespaced key as written, suggesting the platform key", () => {
    // Pulumi reads `monitoring:` in a stack file as <project>:monitoring.
    const [p] = keysOf({ [`${PROJECT_NAME}:monitoring`]: { enabled: true } });
    expect(p).toMatchObject({ key: "monitoring" });
    expect(p!.message).toContain("did you mean platform:monitoring?");
    expect(keysOf({ [`${PROJECT_NAME}:monitorng`]: {} })[0]!.message).toContain("platform:monitoring");
  });

  it("suggests a provider's namespace for its typo, and no far-fetched key for an unknown one", () => {
    expect(keysOf({ "kubernets:context": "k3d-platform" })[0]!.message).toContain(
      "did you mean kubernetes:context?",
    );
    const [aws] = keysOf({ "aws:region": "eu-west-1" });
    expect(aws!.key).toBe("aws:region");
    expect(aws!.message).not.toContain("did you mean");
    expect(aws!.message).toContain("kubernetes:, github:, vercel:, command:, random:, pulumi:");
  });

  it("allows the namespaces of the providers package.json depends on, Pulumi's own and apps:", () => {
    const deps = Object.keys(
      (JSON.parse(readFileSync("package.json", "utf8")) as { dependencies: Record<string, string> })
        .dependencies,
    )
      .filter((d) => /^@pulumi(verse)?\//.test(d) && d !== "@pulumi/pulumi")
      .map((d) => d.split("/")[1]!);
    expect([...PROVIDER_NAMESPACES].sort()).toEqual([...deps, "pulumi"].sort());
    const extra = Object.fromEntries(
      [...PROVIDER_NAMESPACES, "apps"].map((n) => [`${n}:setting`, "value"] as const),
    );
    expect(keysOf(extra)).toEqual([]);
  });

  it("an empty stack says it is empty, instead of an invalid option", () => {
    expect(problemsOf({})).toEqual([
      expect.objectContaining({
        key: "the stack file",
        message: expect.stringMatching(
          /^is empty: a stack needs at least platform:environment and platform:cluster/,
        ),
      }),
    ]);
    const flat = { "platform:sshPrivateKey": "canary" };
    try {
      parsePlatformConfig(flat, new Set(), { stackFile: "Pulumi.qa.yaml" });
      expect.unreachable();
    } catch (e) {
      expect((e as ConfigError).message).toContain("Pulumi.qa.yaml: is empty");
    }
    expect(problemsOf({ "platfrom:environment": "dev" }).map((p) => p.message)).toEqual([
      expect.stringContaining("did you mean platform:environment?"),
      expect.stringMatching(/^sets no platform:\* key/),
    ]);
  });

  it("a required key that is absent is said to be required, with the values it takes", () => {
    const [p] = problemsOf({ "platform:cluster": { kind: "existing" } });
    expect(p).toMatchObject({
      key: "platform:environment",
      message: 'is required: one of "local", "dev", "staging", "prod"',
    });
  });
});

describe("Pulumi.yaml", () => {
  const scratch = (project: string) => {
    const dir = mkdtempSync(join(tmpdir(), "project-"));
    writeFileSync(
      join(dir, "Pulumi.yaml"),
      readFileSync("Pulumi.yaml", "utf8").replace(/^name: .*$/m, `name: ${project}`),
    );
    copyFileSync("Pulumi.local.yaml", join(dir, "Pulumi.local.yaml"));
    return dir;
  };

  it("is the project every name assumes: the policy pack, the part-of label, package.json", () => {
    expect((parse(readFileSync("Pulumi.yaml", "utf8")) as { name: string }).name).toBe(PROJECT_NAME);
    expect(PART_OF).toBe(PROJECT_NAME);
    expect((JSON.parse(readFileSync("package.json", "utf8")) as { name: string }).name).toBe(PROJECT_NAME);
    expect(readFileSync("policies/index.ts", "utf8")).toContain(`new PolicyPack("${PROJECT_NAME}"`);
  });

  it("its template asks `pulumi new` for exactly the keys without a default, with defaults that parse", () => {
    const { template } = parse(readFileSync("Pulumi.yaml", "utf8")) as {
      template: { config: Record<string, Record<string, unknown>> } & Record<string, unknown>;
    };
    // The fields Pulumi's project schema gives a template and its config values.
    for (const field of Object.keys(template))
      expect(["description", "quickstart", "important", "config"]).toContain(field);
    expect(template["quickstart"]).toContain(`Keep the project name ${PROJECT_NAME}`);
    const required = Object.entries(platformSchema.shape)
      .filter(([, schema]) => !schema.safeParse(undefined).success)
      .map(([name]) => `platform:${name}`);
    expect(Object.keys(template.config)).toEqual(required);
    for (const [key, value] of Object.entries(template.config)) {
      for (const field of Object.keys(value))
        expect(["description", "default", "secret"], key).toContain(field);
      expect(value["description"], key).toEqual(expect.any(String));
      expect(value["default"], key).toEqual(expect.any(String));
    }
    // `pulumi new` stores each answer as a string; the program parses JSON text the same.
    const answered = Object.fromEntries(
      Object.entries(template.config).map(([k, v]) => [k, String(v["default"])]),
    );
    expect(parsePlatformConfig(answered).environment).toBe("local");
  });

  it("the preflight refuses a project of another name, saying which name is right", () => {
    expect(() => loadStackConfig(scratch("my-platform"), "local")).toThrow(UsageError);
    expect(() => loadStackConfig(scratch("my-platform"), "local")).toThrow(
      `Pulumi.yaml names the project "my-platform", but this program's stacks, URNs and policy pack are the project "${PROJECT_NAME}": set \`name: ${PROJECT_NAME}\``,
    );
    expect(loadStackConfig(scratch(PROJECT_NAME), "local").project).toBe(PROJECT_NAME);
  });
});

describe("ESC environments", () => {
  /** A scratch project with a stack that imports ESC and leaves the tier and cluster to it. */
  function escStack(environment: string): string {
    const dir = mkdtempSync(join(tmpdir(), "esc-"));
    copyFileSync("Pulumi.yaml", join(dir, "Pulumi.yaml"));
    const local = parse(readFileSync("Pulumi.local.yaml", "utf8")) as { config: Record<string, unknown> };
    const { ["platform:environment"]: _e, ["platform:cluster"]: _c, ...rest } = local.config;
    writeFileSync(join(dir, "Pulumi.esc.yaml"), `${environment}\nconfig: ${JSON.stringify(rest)}\n`);
    symlinkSync(join(process.cwd(), "web"), join(dir, "web"));
    symlinkSync(join(process.cwd(), "services"), join(dir, "services"));
    mkdirSync(join(dir, "policies", "config"), { recursive: true });
    copyFileSync("policies/config/local.json", join(dir, "policies", "config", "esc.json"));
    return dir;
  }

  it("keys an imported environment may supply are external, not missing", () => {
    const sc = loadStackConfig(escStack("environment:\n  - my-project/dev"), "esc");
    expect(sc.environments).toEqual(["my-project/dev"]);
    expect(sc.notes.map((n) => n.key)).toEqual(["environment", "platform:environment", "platform:cluster"]);
    expect(sc.notes[2]!.message).toBe(
      'supplied by ESC environment my-project/dev, not checked offline (evaluated with the stand-in {"kind":"existing"})',
    );
    expect(() => parsePlatformConfig(sc.config, new Set(SECRET_KEY_NAMES))).not.toThrow();
  });

  it("without the import the same file is a config error naming the required keys", () => {
    const sc = loadStackConfig(escStack(""), "esc");
    expect(sc.notes).toEqual([]);
    expect(() => parsePlatformConfig(sc.config, new Set(SECRET_KEY_NAMES))).toThrow(
      /platform:environment: is required/,
    );
  });

  it("the preflight's report notes them as warnings and passes", async () => {
    const r = await runStack("esc", { dir: escStack("environment: [my-project/common, my-project/dev]") });
    if (r.kind !== "plan") throw new Error(JSON.stringify(r.problems));
    const notes = r.plan.findings.filter((f) => f.check === "config");
    expect(notes.map((f) => [f.severity, f.field])).toEqual([
      ["warning", "environment"],
      ["warning", "platform:environment"],
      ["warning", "platform:cluster"],
    ]);
    expect(notes[0]!.message).toBe(
      "Pulumi.esc.yaml imports ESC environments my-project/common, my-project/dev: what it supplies is not checked offline",
    );
    expect(r.plan.summary.mandatory).toBe(0);
  });

  it("refuses an environment: that is not a list of names", () => {
    expect(() => loadStackConfig(escStack("environment: my-project/dev"), "esc")).toThrow(
      'Pulumi.esc.yaml: environment must be a list of ESC environment names, e.g. "environment: [my-project/dev]"',
    );
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
