import * as pulumi from "@pulumi/pulumi";
import { PUBLIC_TLS, unexpectedMandatory } from "./stack-overrides";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import {
  configHash,
  installScript,
  K3sCluster,
  k3sNodeConfig,
  k3sNodes,
  registriesYaml,
  rewriteKubeconfig,
  serverIdentity,
  serverIdentityProblems,
} from "../components/cluster/k3s";
import { localRegistrySetup } from "../components/cluster/local-registry";
import { ConfigError, parsePlatformConfig } from "../components/config";
import { k3sClusterSchema } from "../components/cluster/schema";
import { GPU_POOL_LABEL } from "../components/meta";
import { K3S_VERSION } from "../components/versions";
import { isSecretWrapped, render, renderStack, type Registration } from "./harness";

const CMD = "command:remote:Command";
const NODE_PATCH = "kubernetes:core/v1:NodePatch";

interface Kubeconfig {
  clusters: { cluster: { server: string } }[];
  "current-context": string;
}
interface Registries {
  mirrors: Record<string, { endpoint: string[] }>;
  configs: Record<string, { auth: { username: string; password: string } }>;
}
const K3S = "platform:cluster:K3sCluster";

/** The node config.yaml embedded in an install script. */
function nodeConfigOf(r: Registration): Record<string, unknown> {
  const create = String(r.inputs["create"]);
  const m = /<<'K3S_CONFIG'\n([\s\S]*?)\nK3S_CONFIG/.exec(create);
  expect(m, `no config.yaml in ${r.name}`).not.toBeNull();
  return parse(m![1]!) as Record<string, unknown>;
}

const install = (regs: { get(t: string, n: string): Registration }, stack: string, node: string) =>
  regs.get(CMD, `${stack}-cluster-${node}-install`);

describe("K3sCluster: single server (dev)", async () => {
  const dev = await renderStack("dev");

  it("installs one server and every pool host, reads the kubeconfig and builds a provider", () => {
    expect(dev.ofType(K3S)).toHaveLength(1);
    const names = dev.ofType(CMD).map((r) => r.name);
    expect(names.sort()).toEqual(
      [
        "dev-cluster-dev-server-1-install",
        "dev-cluster-dev-cpu-1-install",
        "dev-cluster-dev-cpu-2-install",
        "dev-cluster-dev-gpu-1-install",
        "dev-cluster-deployer-token",
      ].sort(),
    );
    expect(dev.get("random:index/randomPassword:RandomPassword", "dev-cluster-token")).toBeDefined();
    expect(dev.plan.summary.secretLeaks).toBe(0);
    expect(dev.plan.summary.mandatory).toBe(0);
    expect(dev.plan.summary.schemaErrors).toBe(0);
  });

  it("a single server neither initialises etcd nor joins anything; traefik is off for the mesh", () => {
    const cfg = nodeConfigOf(install(dev, "dev", "dev-server-1"));
    expect(cfg["cluster-init"]).toBeUndefined();
    expect(cfg["server"]).toBeUndefined();
    expect(cfg["tls-san"]).toContain("k3s-dev.edge.example.org");
    expect(cfg["disable"]).toEqual(["traefik"]);
    expect(cfg["token-file"]).toBe("/etc/rancher/k3s/cluster-token");
  });

  it("pins the K3s version and re-runs on change as an update, never a replace; delete uninstalls", () => {
    const server = install(dev, "dev", "dev-server-1");
    const agent = install(dev, "dev", "dev-cpu-1");
    expect(server.inputs["create"]).toContain(`INSTALL_K3S_VERSION='${K3S_VERSION}'`);
    expect(server.inputs["update"]).toBe(server.inputs["create"]);
    // @pulumi/command replaces on any `triggers` change, and a replace's delete uninstalls K3s from
    // the very host just reinstalled: what a re-run depends on lives in the script (an update).
    expect(server.inputs["triggers"]).toBeUndefined();
    expect(agent.inputs["triggers"]).toBeUndefined();
    expect(dev.get(CMD, "dev-cluster-deployer-token").inputs["triggers"]).toBeUndefined();
    expect(String(server.inputs["create"])).toContain(`# platform: k3s ${K3S_VERSION}, inputs `);
    expect(server.inputs["delete"]).toContain("/usr/local/bin/k3s-uninstall.sh");
    expect(agent.inputs["delete"]).toContain("/usr/local/bin/k3s-agent-uninstall.sh");
    expect(agent.inputs["create"]).toContain("INSTALL_K3S_EXEC='agent'");
  });

  it("agents join at the API endpoint after the server is ready; the provider waits for agents", () => {
    const server = install(dev, "dev", "dev-server-1");
    for (const node of ["dev-cpu-1", "dev-cpu-2", "dev-gpu-1"]) {
      const agent = install(dev, "dev", node);
      expect(agent.dependsOn).toContain(server.urn);
      expect(nodeConfigOf(agent)["server"]).toBe("https://k3s-dev.edge.example.org:6443");
    }
    const provider = dev.get("pulumi:providers:kubernetes", "dev-cluster-provider");
    expect(provider.dependsOn).toEqual(
      expect.arrayContaining(["dev-cpu-1", "dev-cpu-2", "dev-gpu-1"].map((n) => install(dev, "dev", n).urn)),
    );
    const kc = dev.get(CMD, "dev-cluster-deployer-token");
    expect(kc.dependsOn).toContain(server.urn);
  });

  it("wraps the token, the SSH key and the kubeconfig as secrets and keeps them off command lines", () => {
    for (const r of dev.ofType(CMD)) {
      const conn = r.inputs["connection"];
      const privateKey = isSecretWrapped(conn)
        ? (conn.value as Record<string, unknown>)["privateKey"]
        : (conn as Record<string, unknown>)["privateKey"];
      expect(isSecretWrapped(conn) || isSecretWrapped(privateKey), r.name).toBe(true);
      expect(String(r.inputs["create"])).not.toMatch(/pfcanary/);
      if (r.name.endsWith("-install")) {
        expect(isSecretWrapped(r.inputs["stdin"]), r.name).toBe(true);
        expect(dev.plain(r)["stdin"]).toMatch(/^pfcanary-generated-dev-cluster-token-/);
      }
    }
    const provider = dev.get("pulumi:providers:kubernetes", "dev-cluster-provider");
    expect(isSecretWrapped(provider.inputs["kubeconfig"])).toBe(true);
    expect(isSecretWrapped(dev.outputs["kubeconfig"])).toBe(true);
    expect(isSecretWrapped(dev.get(K3S, "dev-cluster").outputs?.["kubeconfig"])).toBe(true);
  });

  it("rewrites the kubeconfig's server to the API endpoint", () => {
    const provider = dev.get("pulumi:providers:kubernetes", "dev-cluster-provider");
    const kc = parse(String(dev.plain(provider)["kubeconfig"])) as Kubeconfig;
    expect(kc.clusters[0]!.cluster.server).toBe("https://k3s-dev.edge.example.org:6443");
    expect(kc["current-context"]).toBe("dev-cluster");
    expect(dev.outputs["apiEndpoint"]).toBe("https://k3s-dev.edge.example.org:6443");
  });

  it("taints and labels GPU nodes, and only GPU nodes, through the Kubernetes API after join", () => {
    const patch = (node: string) => dev.plain(dev.get(NODE_PATCH, `dev-cluster-${node}-node`));
    const gpu = patch("dev-gpu-1");
    expect(gpu["metadata"]["name"]).toBe("dev-gpu-1");
    expect(gpu["spec"]["taints"]).toEqual([
      { key: "nvidia.com/gpu", value: "present", effect: "NoSchedule" },
    ]);
    expect(gpu["metadata"]["labels"]).toMatchObject({
      [GPU_POOL_LABEL]: "gpu-l4",
      "nvidia.com/device-plugin.config": "gpu-l4",
    });
    const cpu = patch("dev-cpu-1");
    expect(cpu["spec"]["taints"]).toEqual([]);
    expect(cpu["metadata"]["labels"]).toEqual({ "platform.ai/pool": "cpu" });
    // Registration keeps only what first scheduling needs: the GPU taint, no labels.
    const reg = nodeConfigOf(install(dev, "dev", "dev-gpu-1"));
    expect(reg["node-taint"]).toEqual(["nvidia.com/gpu=present:NoSchedule"]);
    expect(reg["node-label"]).toBeUndefined();
    expect(nodeConfigOf(install(dev, "dev", "dev-cpu-1"))["node-taint"]).toBeUndefined();
    // Each patch waits for its node's install and is what the cluster's consumers wait for.
    expect(dev.get(NODE_PATCH, "dev-cluster-dev-gpu-1-node").dependsOn).toContain(
      install(dev, "dev", "dev-gpu-1").urn,
    );
  });

  it("authenticates with a ServiceAccount token, never the expiring admin client certificate", () => {
    const provider = dev.get("pulumi:providers:kubernetes", "dev-cluster-provider");
    const text = String(dev.plain(provider)["kubeconfig"]);
    expect(text).not.toMatch(/client-certificate|client-key/);
    const kc = parse(text) as { users: { user: Record<string, string> }[] };
    expect(kc.users[0]!.user["token"]).toBe("fake token for dev-cluster-deployer-token");
    const token = dev.get(CMD, "dev-cluster-deployer-token");
    const create = String(token.inputs["create"]);
    expect(create).not.toContain("k3s.yaml");
    expect(create).toContain("kubernetes.io/service-account-token");
    expect(create).toContain("cluster-admin");
    // A re-run re-applies (update), never replaces: a replace's delete would revoke the new token.
    expect(token.inputs["update"]).toBe(create);
    expect(String(token.inputs["delete"])).toContain("delete secret platform-deployer-token");
  });

  it("declares each GPU pool with its node selector and node count", () => {
    const pool = dev.get("platform:cluster:GpuPool", "dev-cluster-pool-gpu-l4");
    expect(pool.parent).toBe(dev.get(K3S, "dev-cluster").urn);
    expect(dev.plain(pool)).toMatchObject({
      nodes: 1,
      nodeSelector: { [GPU_POOL_LABEL]: "gpu-l4" },
      // Whole GPUs: dev's 8B model leaves no memory for a second replica on its L4.
      capacity: 1,
    });
  });
});

describe("K3sCluster: HA (prod)", async () => {
  const prod = await renderStack("prod");

  it("first server initialises embedded etcd, the others join it one at a time", () => {
    const [s1, s2, s3] = ["prod-server-1", "prod-server-2", "prod-server-3"].map((n) =>
      install(prod, "prod", n),
    );
    expect(nodeConfigOf(s1!)["cluster-init"]).toBe(true);
    expect(nodeConfigOf(s1!)["server"]).toBeUndefined();
    for (const s of [s2!, s3!]) {
      expect(nodeConfigOf(s)["server"]).toBe("https://10.30.0.10:6443");
      expect(nodeConfigOf(s)["cluster-init"]).toBeUndefined();
    }
    expect(s2!.dependsOn).toContain(s1!.urn);
    expect(s3!.dependsOn).toContain(s2!.urn);
    expect(s1!.dependsOn.filter((u) => u.includes("Command"))).toEqual([]);
  });

  it("agents wait for every server", () => {
    const servers = ["prod-server-1", "prod-server-2", "prod-server-3"].map(
      (n) => install(prod, "prod", n).urn,
    );
    for (const n of ["prod-cpu-1", "prod-gpu-1", "prod-gpu-3"])
      expect(install(prod, "prod", n).dependsOn).toEqual(expect.arrayContaining(servers));
  });

  it("labels MIG nodes with their profile and declares both GPU pools", () => {
    const h100 = prod.plain(prod.get(NODE_PATCH, "prod-cluster-prod-gpu-1-node"));
    expect(h100["metadata"]["labels"]["nvidia.com/mig.config"]).toBe("all-disabled");
    expect(prod.plain(prod.get("platform:cluster:GpuPool", "prod-cluster-pool-gpu-h100"))).toMatchObject({
      nodes: 2,
      capacity: 8,
    });
    // 2 L4s × 2 slices: as many replicas as fit an L4's memory together.
    expect(prod.plain(prod.get("platform:cluster:GpuPool", "prod-cluster-pool-gpu-l4"))).toMatchObject({
      nodes: 1,
      capacity: 4,
    });
    expect(prod.plan.summary.secretLeaks).toBe(0);
    expect(unexpectedMandatory("prod", prod.plan.violations)).toEqual([]);
  });
});

const baseK3s = k3sClusterSchema.parse({
  kind: "k3s",
  apiEndpoint: "k3s.example.org",
  servers: [{ name: "s1", address: "10.0.0.10" }],
  pools: [
    {
      name: "cpu",
      hosts: [
        { name: "c1", address: "10.0.0.20" },
        { name: "c2", address: "10.0.0.21" },
      ],
    },
  ],
});

describe("K3sCluster: install decisions", () => {
  it("a node-config change re-runs only the hosts it concerns", () => {
    const hashes = (c: typeof baseK3s) =>
      k3sNodes(c).map((n) => configHash(k3sNodeConfig(n, c, { disableTraefik: true })));
    const before = hashes(baseK3s);
    const after = hashes({ ...baseK3s, tlsSans: ["10.0.0.99"] });
    expect(after[0]).not.toBe(before[0]);
    expect(after.slice(1)).toEqual(before.slice(1));
  });

  it("keeps traefik when the mesh is off and adds extra TLS SANs", () => {
    const c = { ...baseK3s, tlsSans: ["10.0.0.100"] };
    const cfg = k3sNodeConfig(k3sNodes(c)[0]!, c, { disableTraefik: false });
    expect(cfg["disable"]).toBeUndefined();
    expect(cfg["tls-san"]).toEqual(["k3s.example.org", "10.0.0.100", "10.0.0.10"]);
  });

  it("air-gapped installs copy the binary, never download", () => {
    const node = k3sNodes(baseK3s)[0]!;
    const script = installScript(
      node,
      {},
      {
        version: K3S_VERSION,
        airgap: { binary: "/tmp/k3s-airgap-binary", installScript: "/tmp/k3s-airgap-install.sh" },
      },
    );
    expect(script).not.toContain("curl");
    expect(script).toContain("INSTALL_K3S_SKIP_DOWNLOAD=true");
    expect(script).toContain("install -m 0755 /tmp/k3s-airgap-binary /usr/local/bin/k3s");
  });

  it("brackets IPv6 endpoints in the kubeconfig", () => {
    const kc = "clusters:\n- cluster:\n    server: https://127.0.0.1:6443\n  name: default\n";
    expect((parse(rewriteKubeconfig(kc, "fd00::10")) as Kubeconfig).clusters[0]!.cluster.server).toBe(
      "https://[fd00::10]:6443",
    );
  });

  it("writes registries.yaml with mirror and auth", () => {
    const y = parse(
      registriesYaml({ hostname: "registry.example.org", username: "u", password: "p" }),
    ) as Registries;
    expect(y.mirrors["registry.example.org"]?.endpoint).toEqual(["https://registry.example.org"]);
    expect(y.configs["registry.example.org"]?.auth).toEqual({ username: "u", password: "p" });
  });
});

/** Renders a K3s cluster of `config` and returns its registrations. */
const renderK3s = (config: typeof baseK3s) =>
  render(() => {
    new K3sCluster("c", { config, sshPrivateKey: pulumi.secret("KEY"), disableTraefik: true });
  });

describe("K3sCluster day 2", () => {
  it("a pool's label or taint change patches the Node through the API and reinstalls nothing", async () => {
    const before = await renderK3s(baseK3s);
    const after = await renderK3s(
      k3sClusterSchema.parse({
        ...baseK3s,
        pools: [
          {
            ...baseK3s.pools[0]!,
            labels: { "topology.kubernetes.io/zone": "rack-b" },
            taints: [{ key: "dedicated", value: "batch", effect: "NoSchedule" }],
          },
        ],
      }),
    );
    for (const host of ["c1", "c2"]) {
      const b = before.plain(before.get(NODE_PATCH, `c-${host}-node`));
      const a = after.plain(after.get(NODE_PATCH, `c-${host}-node`));
      expect(a).not.toEqual(b);
      expect(a["metadata"]["labels"]["topology.kubernetes.io/zone"]).toBe("rack-b");
      expect(a["spec"]["taints"]).toEqual([{ key: "dedicated", value: "batch", effect: "NoSchedule" }]);
      // The install (script and triggers) is untouched: no K3s restart for a label.
      const bi = before.plain(before.get(CMD, `c-${host}-install`));
      const ai = after.plain(after.get(CMD, `c-${host}-install`));
      expect(ai["create"]).toBe(bi["create"]);
      expect(ai["triggers"]).toEqual(bi["triggers"]);
    }
  });

  it("agents roll one at a time: a shared input change never re-installs every agent at once", async () => {
    const config = k3sClusterSchema.parse({
      ...baseK3s,
      pools: [
        ...baseK3s.pools,
        { name: "gpu", kind: "gpu", hosts: [{ name: "g1", address: "10.0.0.30" }], gpu: { gpusPerNode: 1 } },
      ],
    });
    const out = await renderK3s(config);
    const agents = ["c1", "c2", "g1"].map((h) => out.get(CMD, `c-${h}-install`));
    // Each agent waits for the one before it, so an update (version, API endpoint, registry
    // credentials) reaches one host, which must come back ready before the next starts.
    for (let i = 1; i < agents.length; i++) expect(agents[i]!.dependsOn).toContain(agents[i - 1]!.urn);
    // Per-host re-runs: each install's script carries that host's own inputs hash, no shared trigger.
    const stamps = agents.map((a) => /# platform: .*inputs (\w+)/.exec(String(out.plain(a)["create"]))![1]);
    expect(new Set(stamps).size).toBe(agents.length);
  });

  it("refuses to move a server to another address (its uninstall would wipe the etcd member)", () => {
    const recorded = serverIdentity(baseK3s);
    const moved = { ...baseK3s, servers: [{ name: "s1", address: "10.0.0.99" }] };
    const problems = serverIdentityProblems(recorded, moved);
    expect(problems.map((p) => p.key)).toEqual(["platform:cluster.servers[0].address"]);
    expect(problems[0]!.message).toMatch(/10\.0\.0\.10.*10\.0\.0\.99.*drain.*remove.*new name/);
    expect(serverIdentityProblems(recorded, baseK3s)).toEqual([]);
  });

  it("refuses to replace the first server (cluster-init would start a second cluster)", () => {
    const recorded = serverIdentity(baseK3s);
    const replaced = { ...baseK3s, servers: [{ name: "s9", address: "10.0.0.19" }] };
    const problems = serverIdentityProblems(recorded, replaced);
    expect(problems.map((p) => p.key)).toEqual(["platform:cluster.servers[0].name"]);
    expect(problems[0]!.message).toMatch(/cluster-init.*second/);
  });

  it("the recorded identity gates the servers' installs: a changed address fails before any install", async () => {
    // Under mocks a resource's outputs echo its inputs, so rewriting the recorded keepers plays the
    // part of the state from an earlier `pulumi up` (ignoreChanges keeps it there for real).
    const earlier = JSON.stringify(serverIdentity(baseK3s));
    const seen: pulumi.ResourceOptions[] = [];
    const run = async (config: typeof baseK3s) => {
      let problems: unknown[] = [];
      let serverScript = "";
      await render(() => {
        const c = new K3sCluster(
          "c",
          { config, sshPrivateKey: pulumi.secret("KEY"), disableTraefik: true },
          {
            transformations: [
              (a) => {
                if (a.type === "random:index/randomId:RandomId") {
                  seen.push(a.opts);
                  return { props: { ...a.props, keepers: { identity: earlier } }, opts: a.opts };
                }
                if (a.type === CMD && a.name === "c-s1-install") {
                  seen.push(a.opts);
                  return undefined;
                }
                return undefined;
              },
            ],
          },
        );
        c.identityProblems.apply((p) => (problems = p));
        c.servers[0]!.create.apply((x) => (serverScript = x ?? ""));
      });
      return { problems, serverScript };
    };
    expect((await run(baseK3s)).problems).toEqual([]);
    expect(seen[0]!.ignoreChanges).toEqual(["keepers"]);
    // The server's install has no replace-on-address: a move is refused, never carried out.
    expect(seen[1]!.replaceOnChanges ?? []).not.toContain("connection.host");
    expect((seen[1] as pulumi.CustomResourceOptions).deleteBeforeReplace).toBeUndefined();
    // A move is judged against what the state recorded, not against the new config.
    expect(
      serverIdentityProblems(JSON.parse(earlier) as ReturnType<typeof serverIdentity>, {
        ...baseK3s,
        servers: [{ name: "s1", address: "10.0.0.99" }],
      }).map((p) => p.key),
    ).toEqual(["platform:cluster.servers[0].address"]);
    // And the server's install script is made from the check (it cannot run before it passed).
    const ok = await renderK3s(baseK3s);
    expect(String(ok.plain(ok.get(CMD, "c-s1-install"))["create"])).toMatch(/identity ok$/);
  });
});

describe("K3sCluster component", () => {
  it("sends registry credentials on stdin, copies air-gap artifacts before installing", async () => {
    const config = k3sClusterSchema.parse({
      ...baseK3s,
      airgap: {
        binaryPath: "artifacts/k3s",
        installScriptPath: "artifacts/install.sh",
        imagesPath: "a/img.tar.zst",
      },
    });
    const out = await render(() => {
      new K3sCluster("c", {
        config,
        sshPrivateKey: pulumi.secret("KEY"),
        disableTraefik: true,
        registry: {
          hostname: "registry.example.org",
          username: "puller",
          password: pulumi.secret("REGPASS"),
        },
      });
    });
    const server = out.get(CMD, "c-s1-install");
    expect(String(server.inputs["create"])).not.toContain("REGPASS");
    expect(isSecretWrapped(server.inputs["stdin"])).toBe(true);
    const [, registries] = /^[^\n]*\n([\s\S]*)$/.exec(String(out.plain(server)["stdin"]))!;
    expect((parse(registries!) as Registries).configs["registry.example.org"]!.auth.password).toBe("REGPASS");
    const copies = out.ofType("command:remote:CopyToRemote").filter((r) => r.name.startsWith("c-s1-"));
    expect(copies.map((r) => r.name).sort()).toEqual(
      ["c-s1-airgap-binary", "c-s1-airgap-images", "c-s1-airgap-install-script"].sort(),
    );
    expect(server.dependsOn).toEqual(expect.arrayContaining(copies.map((c) => c.urn)));
    expect(String(server.inputs["create"])).toContain("/var/lib/rancher/k3s/agent/images/");
  });
});

describe("cluster config", () => {
  const k3s = {
    kind: "k3s",
    apiEndpoint: "k3s.example.org",
    servers: [{ name: "s1", address: "10.0.0.10" }],
    pools: [
      {
        name: "h100",
        kind: "gpu",
        hosts: [{ name: "g1", address: "10.0.0.20" }],
        gpu: { gpusPerNode: 1, sharing: { mig: { strategy: "single", profile: "all-1g.10gb" } } },
      },
    ],
  };
  const problems = (raw: Record<string, unknown>) => {
    const flat = Object.fromEntries(
      Object.entries(raw).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
    );
    try {
      parsePlatformConfig(
        { "platform:environment": "dev", ...PUBLIC_TLS, ...flat },
        new Set(["sshPrivateKey", "acmeDnsApiToken"]),
      );
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as ConfigError).problems.map((p) => p.key);
    }
    return [];
  };

  it("accepts a MIG pool with the operator", () => {
    expect(problems({ "platform:cluster": k3s })).toEqual([]);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ["bad SSH user", { "platform:cluster": { ...k3s, sshUser: "Root User" } }, "platform:cluster.sshUser"],
    [
      "bad TLS SAN",
      { "platform:cluster": { ...k3s, tlsSans: ["not an address!"] } },
      "platform:cluster.tlsSans[0]",
    ],
    [
      "air-gap without install script",
      { "platform:cluster": { ...k3s, airgap: { binaryPath: "k3s" } } },
      "platform:cluster.airgap.installScriptPath",
    ],
    [
      "MIG with the device plugin alone",
      { "platform:cluster": k3s, "platform:gpu": { mode: "device-plugin" } },
      "platform:cluster.pools[0].gpu.sharing.mig",
    ],
    [
      "MIG strategies that disagree",
      {
        "platform:cluster": {
          ...k3s,
          pools: [
            k3s.pools[0],
            {
              ...k3s.pools[0],
              name: "h100b",
              hosts: [{ name: "g2", address: "10.0.0.21" }],
              gpu: { gpusPerNode: 1, sharing: { mig: { strategy: "mixed", profile: "all-balanced" } } },
            },
          ],
        },
      },
      "platform:cluster.pools[1].gpu.sharing.mig.strategy",
    ],
    [
      "duplicate node names",
      { "platform:cluster": { ...k3s, servers: [{ name: "g1", address: "10.0.0.9" }] } },
      "platform:cluster.pools[0].hosts[0].name",
    ],
    [
      "bad MIG profile",
      {
        "platform:cluster": {
          ...k3s,
          pools: [
            {
              ...k3s.pools[0],
              gpu: { gpusPerNode: 1, sharing: { mig: { strategy: "single", profile: "half" } } },
            },
          ],
        },
      },
      "platform:cluster.pools[0].gpu.sharing.mig.profile",
    ],
  ])("rejects %s naming the key", (_label, raw, key) => {
    expect(problems(raw)).toContain(key);
  });
});

describe("local clusters and the in-cluster registry", () => {
  const reg = { hostname: "registry.platform.local", username: "platform", password: "PW" };
  it("k3d gets a registries.yaml for --registry-config with mirror, auth and the self-signed TLS skip", () => {
    const s = localRegistrySetup("k3d", reg)!;
    expect(s.command).toContain("--registry-config registries.yaml");
    const doc = parse(s.file.content) as Registries & { configs: Record<string, { tls: unknown }> };
    expect(doc.mirrors["registry.platform.local"]!.endpoint).toEqual(["https://registry.platform.local"]);
    expect(doc.configs["registry.platform.local"]!.auth.password).toBe("PW");
    expect(s.summary).toMatch(/k3d nodes pull from registry\.platform\.local only with a registries\.yaml/);
  });
  it("kind gets a containerd config patch; other distributions need nothing", () => {
    const s = localRegistrySetup("kind", reg)!;
    const doc = parse(s.file.content) as { containerdConfigPatches: string[] };
    expect(doc.containerdConfigPatches[0]).toContain('registry.configs."registry.platform.local".auth');
    expect(s.command).toContain("kind create cluster");
    expect(localRegistrySetup("eks", reg)).toBeUndefined();
  });
});
