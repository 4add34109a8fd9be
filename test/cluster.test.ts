import * as pulumi from "@pulumi/pulumi";
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
} from "../components/cluster/k3s";
import { ConfigError, parsePlatformConfig } from "../components/config";
import { k3sClusterSchema } from "../components/cluster/schema";
import { GPU_POOL_LABEL } from "../components/meta";
import { K3S_VERSION } from "../components/versions";
import { isSecretWrapped, render, renderStack, type Registration } from "./harness";

const CMD = "command:remote:Command";

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
        "dev-cluster-kubeconfig",
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

  it("pins the K3s version and re-runs on change through triggers; delete uninstalls", () => {
    const server = install(dev, "dev", "dev-server-1");
    const agent = install(dev, "dev", "dev-cpu-1");
    expect(server.inputs["create"]).toContain(`INSTALL_K3S_VERSION='${K3S_VERSION}'`);
    expect(server.inputs["update"]).toBe(server.inputs["create"]);
    expect((server.inputs["triggers"] as unknown[])[0]).toBe(K3S_VERSION);
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
    const kc = dev.get(CMD, "dev-cluster-kubeconfig");
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

  it("taints and labels GPU nodes, and only GPU nodes", () => {
    const gpu = nodeConfigOf(install(dev, "dev", "dev-gpu-1"));
    expect(gpu["node-taint"]).toEqual(["nvidia.com/gpu=present:NoSchedule"]);
    expect(gpu["node-label"]).toEqual(
      expect.arrayContaining([`${GPU_POOL_LABEL}=gpu-l4`, "nvidia.com/device-plugin.config=gpu-l4"]),
    );
    const cpu = nodeConfigOf(install(dev, "dev", "dev-cpu-1"));
    expect(cpu["node-taint"]).toBeUndefined();
    expect(cpu["node-label"]).toEqual(["platform.ai/pool=cpu"]);
  });

  it("declares each GPU pool with its node selector and node count", () => {
    const pool = dev.get("platform:cluster:GpuPool", "dev-cluster-pool-gpu-l4");
    expect(pool.parent).toBe(dev.get(K3S, "dev-cluster").urn);
    expect(dev.plain(pool)).toMatchObject({
      nodes: 1,
      nodeSelector: { [GPU_POOL_LABEL]: "gpu-l4" },
      capacity: 2,
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
    const h100 = nodeConfigOf(install(prod, "prod", "prod-gpu-1"));
    expect(h100["node-label"]).toContain("nvidia.com/mig.config=all-disabled");
    expect(prod.plain(prod.get("platform:cluster:GpuPool", "prod-cluster-pool-gpu-h100"))).toMatchObject({
      nodes: 2,
      capacity: 8,
    });
    expect(prod.plain(prod.get("platform:cluster:GpuPool", "prod-cluster-pool-gpu-l4"))).toMatchObject({
      nodes: 1,
      capacity: 8,
    });
    expect(prod.plan.summary.secretLeaks).toBe(0);
    expect(prod.plan.summary.mandatory).toBe(0);
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
  it("a node-config change re-runs only that host's install", () => {
    const before = k3sNodes(baseK3s).map((n) =>
      configHash(k3sNodeConfig(n, baseK3s, { disableTraefik: true })),
    );
    const changed = { ...baseK3s, pools: [{ ...baseK3s.pools[0]!, labels: { rack: "a" } }] };
    const after = k3sNodes(changed).map((n) =>
      configHash(k3sNodeConfig(n, changed, { disableTraefik: true })),
    );
    expect(after[0]).toBe(before[0]);
    expect(after[1]).not.toBe(before[1]);
    expect(after[2]).not.toBe(before[2]);
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
      parsePlatformConfig({ "platform:environment": "dev", ...flat }, new Set(["sshPrivateKey"]));
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
