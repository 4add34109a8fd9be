/**
 * K3s over SSH: one server (or three with embedded etcd), agent pools with labels and taints, GPU
 * pools tainted and labelled for the NVIDIA stack. Every host is one remote.Command whose create and
 * update run the same idempotent install (so a version or node-config change re-runs it on that
 * host) and whose delete uninstalls K3s. Secret material (cluster token, registry credentials)
 * travels on the command's stdin, never in its command line.
 */
import { createHash } from "node:crypto";
import { basename } from "node:path";
import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { parse, stringify } from "yaml";
import { gpuNodeLabels } from "../gpu/sharing";
import { GPU_POOL_LABEL, GPU_TAINT } from "../meta";
import { K3S_VERSION } from "../versions";
import { GpuPool } from "./gpu-pool";
import type { ClusterHandle, GpuPool as GpuPoolSpec } from "./handle";
import type { K3sClusterConfig } from "./schema";

/** Node label naming a node's pool (CPU and GPU pools alike). */
export const POOL_LABEL = "platform.ai/pool";
export const K3S_API_PORT = 6443;
const ETC = "/etc/rancher/k3s";
const TOKEN_FILE = `${ETC}/cluster-token`;
const AIRGAP_DIR = "/tmp";

export interface RegistryMirror {
  /** Registry hostname (mirror key and endpoint). */
  readonly hostname: string;
  readonly username: string;
  readonly password: pulumi.Output<string>;
  /** Skip TLS verification (a CA minted inside the cluster cannot be given to containerd up front). */
  readonly insecureSkipVerify?: boolean;
}

export interface K3sClusterArgs {
  /** The cluster section of the stack config (kind k3s). */
  readonly config: K3sClusterConfig;
  /** PEM private key SSH uses on every host (a secret). */
  readonly sshPrivateKey: pulumi.Input<string>;
  /** Disable the bundled Traefik (when the mesh's ingress gateway serves ingress). */
  readonly disableTraefik: boolean;
  /** The platform's in-cluster registry: written to registries.yaml (mirror + auth) on every node. */
  readonly registry?: RegistryMirror;
  /** K3s version; defaults to the pinned K3S_VERSION. */
  readonly version?: string;
}

export type NodeRole = "server" | "agent";
export type Taint = { readonly key: string; readonly value?: string | undefined; readonly effect: string };

/** One host and what K3s makes of it. */
export interface K3sNode {
  readonly name: string;
  readonly address: string;
  readonly role: NodeRole;
  /** Position among the servers (0 = the one that initialises the cluster). */
  readonly serverIndex?: number;
  readonly pool?: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly taints: readonly Taint[];
}

/** `host:port` as a URL authority (IPv6 addresses bracketed). */
export function apiUrl(host: string): string {
  return `https://${host.includes(":") ? `[${host}]` : host}:${K3S_API_PORT}`;
}

/** Every host of the cluster in install order: servers first, then the pools' agents. */
export function k3sNodes(config: K3sClusterConfig): K3sNode[] {
  const servers: K3sNode[] = config.servers.map((h, i) => ({
    name: h.name,
    address: h.address,
    role: "server",
    serverIndex: i,
    labels: {},
    taints: [],
  }));
  const agents: K3sNode[] = config.pools.flatMap((p) =>
    p.hosts.map((h) => ({
      name: h.name,
      address: h.address,
      role: "agent" as const,
      pool: p.name,
      labels: {
        [POOL_LABEL]: p.name,
        ...p.labels,
        ...(p.kind === "gpu" && p.gpu ? gpuNodeLabels(p.name, p.gpu) : {}),
      },
      taints: [...p.taints, ...(p.kind === "gpu" ? [GPU_TAINT] : [])],
    })),
  );
  return [...servers, ...agents];
}

/** GPU pools as every consumer sees them: selected by the pool label, one node per host. */
export function k3sGpuPools(config: K3sClusterConfig): GpuPoolSpec[] {
  return config.pools
    .filter((p) => p.kind === "gpu" && p.gpu)
    .map((p) => ({
      name: p.name,
      nodeSelector: { [GPU_POOL_LABEL]: p.name },
      nodes: p.hosts.length,
      gpu: p.gpu!,
    }));
}

const taintString = (t: Taint) => `${t.key}${t.value === undefined ? "" : `=${t.value}`}:${t.effect}`;

/**
 * The node's /etc/rancher/k3s/config.yaml: everything but secrets (the token is read from
 * `token-file`). Servers after the first join the first; agents register at the API endpoint.
 */
export function k3sNodeConfig(
  node: K3sNode,
  config: K3sClusterConfig,
  options: { disableTraefik: boolean },
): Record<string, unknown> {
  const ha = config.servers.length > 1;
  const first = config.servers[0]!;
  const common = {
    "node-name": node.name,
    "token-file": TOKEN_FILE,
    ...(Object.keys(node.labels).length
      ? { "node-label": Object.entries(node.labels).map(([k, v]) => `${k}=${v}`) }
      : {}),
    ...(node.taints.length ? { "node-taint": node.taints.map(taintString) } : {}),
  };
  if (node.role === "agent") return { server: apiUrl(config.apiEndpoint), ...common };
  return {
    ...(ha && node.serverIndex === 0 ? { "cluster-init": true } : {}),
    ...(node.serverIndex! > 0 ? { server: apiUrl(first.address) } : {}),
    ...common,
    "tls-san": [...new Set([config.apiEndpoint, ...config.tlsSans, node.address])],
    "write-kubeconfig-mode": "0600",
    ...(options.disableTraefik ? { disable: ["traefik"] } : {}),
  };
}

/** registries.yaml: the platform registry as a mirror with its credentials. Secret content. */
export function registriesYaml(registry: {
  hostname: string;
  username: string;
  password: string;
  insecureSkipVerify?: boolean;
}): string {
  return stringify({
    mirrors: { [registry.hostname]: { endpoint: [`https://${registry.hostname}`] } },
    configs: {
      [registry.hostname]: {
        auth: { username: registry.username, password: registry.password },
        ...(registry.insecureSkipVerify ? { tls: { insecure_skip_verify: true } } : {}),
      },
    },
  });
}

/** The secret material a node's install reads from stdin: line 1 the token, the rest registries.yaml. */
export function installStdin(token: string, registries?: string): string {
  return `${token}\n${registries ?? ""}`;
}

const SUDO = `SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"`;

export interface AirgapPaths {
  readonly binary: string;
  readonly installScript: string;
  readonly images?: string;
}

/** Where the air-gap artifacts land on a host. */
export function airgapRemotePaths(airgap: NonNullable<K3sClusterConfig["airgap"]>): AirgapPaths {
  return {
    binary: `${AIRGAP_DIR}/k3s-airgap-binary`,
    installScript: `${AIRGAP_DIR}/k3s-airgap-install.sh`,
    ...(airgap.imagesPath ? { images: `${AIRGAP_DIR}/${basename(airgap.imagesPath)}` } : {}),
  };
}

/**
 * The install (create and update) script of one node. Idempotent: re-running it writes the config,
 * re-runs install.sh (which restarts K3s) and waits until the node serves.
 */
export function installScript(
  node: K3sNode,
  nodeConfig: Record<string, unknown>,
  options: { version: string; airgap?: AirgapPaths },
): string {
  const exec = node.role === "server" ? "server" : "agent";
  const env = `INSTALL_K3S_VERSION='${options.version}' INSTALL_K3S_EXEC='${exec}'`;
  const a = options.airgap;
  const install = a
    ? [
        `$SUDO install -m 0755 ${a.binary} /usr/local/bin/k3s`,
        ...(a.images
          ? [
              "$SUDO mkdir -p /var/lib/rancher/k3s/agent/images",
              `$SUDO cp ${a.images} /var/lib/rancher/k3s/agent/images/`,
            ]
          : []),
        `$SUDO env INSTALL_K3S_SKIP_DOWNLOAD=true ${env} sh ${a.installScript}`,
      ]
    : [`curl -sfL https://get.k3s.io | $SUDO env ${env} sh -`];
  const ready =
    node.role === "server"
      ? "$SUDO k3s kubectl get --raw=/readyz >/dev/null 2>&1"
      : "systemctl is-active --quiet k3s-agent";
  return [
    "set -eu",
    SUDO,
    `$SUDO mkdir -p ${ETC}`,
    "# Secrets arrive on stdin, never on this command line: line 1 the token, the rest registries.yaml.",
    "IFS= read -r TOKEN",
    `printf '%s\\n' "$TOKEN" | $SUDO sh -c 'umask 077 && cat > ${TOKEN_FILE}'`,
    "unset TOKEN",
    `$SUDO sh -c 'umask 077 && cat > ${ETC}/registries.yaml'`,
    `$SUDO test -s ${ETC}/registries.yaml || $SUDO rm -f ${ETC}/registries.yaml`,
    `$SUDO sh -c 'umask 022 && cat > ${ETC}/config.yaml' <<'K3S_CONFIG'`,
    stringify(nodeConfig).trimEnd(),
    "K3S_CONFIG",
    ...install,
    "i=0",
    `until ${ready}; do`,
    `  i=$((i + 1)); [ "$i" -lt 150 ] || { echo "k3s ${exec} on ${node.name} not ready after 300s" >&2; exit 1; }`,
    "  sleep 2",
    "done",
  ].join("\n");
}

/** The delete script: K3s's own uninstaller, when K3s is (still) there. */
export function uninstallScript(role: NodeRole): string {
  const script =
    role === "server" ? "/usr/local/bin/k3s-uninstall.sh" : "/usr/local/bin/k3s-agent-uninstall.sh";
  return [SUDO, `if [ -x ${script} ]; then $SUDO ${script}; fi`].join("\n");
}

/** Short hash of what a node's install depends on; a change re-runs the install on that host. */
export function configHash(...parts: unknown[]): string {
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex").slice(0, 16);
}

/** The server's kubeconfig pointed at the API endpoint instead of the loopback address. */
export function rewriteKubeconfig(kubeconfig: string, apiEndpoint: string, contextName?: string): string {
  const doc = parse(kubeconfig) as {
    clusters?: { name?: string; cluster?: { server?: string } }[];
    contexts?: { name?: string }[];
    "current-context"?: string;
  };
  for (const c of doc.clusters ?? []) if (c.cluster) c.cluster.server = apiUrl(apiEndpoint);
  if (contextName) {
    for (const c of doc.contexts ?? []) if (c.name === doc["current-context"]) c.name = contextName;
    doc["current-context"] = contextName;
  }
  return stringify(doc);
}

/** K3s installed on hosts over SSH; the same ClusterHandle as any other cluster. */
export class K3sCluster extends pulumi.ComponentResource implements ClusterHandle {
  public readonly provider: k8s.Provider;
  public readonly kubeconfig: pulumi.Output<string>;
  public readonly distribution = "k3s" as const;
  public readonly gpuPools: readonly GpuPoolSpec[];
  /** The agents' (or, without agents, the servers') install commands: nodes have joined. */
  public readonly ready: readonly pulumi.Resource[];
  /** Where clients reach the API server (https://<apiEndpoint>:6443). */
  public readonly apiEndpoint: string;
  public readonly servers: readonly command.remote.Command[];
  public readonly agents: readonly command.remote.Command[];

  constructor(name: string, args: K3sClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:cluster:K3sCluster", name, {}, opts);
    const { config } = args;
    const version = args.version ?? K3S_VERSION;
    this.apiEndpoint = apiUrl(config.apiEndpoint);

    const token = new random.RandomPassword(
      `${name}-token`,
      { length: 48, special: false },
      { parent: this },
    );
    const registries = args.registry
      ? pulumi.secret(
          args.registry.password.apply((password) =>
            registriesYaml({
              hostname: args.registry!.hostname,
              username: args.registry!.username,
              password,
              ...(args.registry!.insecureSkipVerify ? { insecureSkipVerify: true } : {}),
            }),
          ),
        )
      : undefined;
    const stdin = pulumi.secret(pulumi.all([token.result, registries]).apply(([t, r]) => installStdin(t, r)));
    const privateKey = pulumi.secret(args.sshPrivateKey);
    const connection = (host: string): command.types.input.remote.ConnectionArgs => ({
      host,
      port: config.sshPort,
      user: config.sshUser,
      privateKey,
    });
    const airgap = config.airgap ? airgapRemotePaths(config.airgap) : undefined;
    // Non-secret registry settings belong in the trigger; a password rotation changes stdin (an update).
    const registryKey = args.registry ? [args.registry.hostname, args.registry.username] : [];

    const nodeCommand = (node: K3sNode, dependsOn: pulumi.Resource[]): command.remote.Command => {
      const nodeConfig = k3sNodeConfig(node, config, { disableTraefik: args.disableTraefik });
      const copies =
        config.airgap && airgap ? this.copyAirgap(name, node, config.airgap, airgap, connection) : [];
      const script = installScript(node, nodeConfig, { version, ...(airgap ? { airgap } : {}) });
      return new command.remote.Command(
        `${name}-${node.name}-install`,
        {
          connection: connection(node.address),
          create: script,
          update: script,
          delete: uninstallScript(node.role),
          stdin,
          triggers: [version, configHash(nodeConfig, config.airgap ?? null, registryKey)],
          logging: "stderr",
        },
        {
          parent: this,
          dependsOn: [...dependsOn, ...copies],
          // A host moved to another address: uninstall from the old one first, then install.
          replaceOnChanges: ["connection.host"],
          deleteBeforeReplace: true,
        },
      );
    };

    const nodes = k3sNodes(config);
    const servers: command.remote.Command[] = [];
    for (const node of nodes.filter((n) => n.role === "server")) {
      // Servers join one at a time, after the first has initialised the cluster (etcd quorum).
      servers.push(nodeCommand(node, servers.length ? [servers[servers.length - 1]!] : []));
    }
    this.servers = servers;
    this.agents = nodes.filter((n) => n.role === "agent").map((n) => nodeCommand(n, servers));

    const first = config.servers[0]!;
    const readKubeconfig = new command.remote.Command(
      `${name}-kubeconfig`,
      {
        connection: connection(first.address),
        create: `${SUDO}\n$SUDO cat ${ETC}/k3s.yaml`,
        // Read again whenever the first server is reinstalled.
        triggers: [servers[0]!.triggers],
        logging: "none",
      },
      { parent: this, dependsOn: [servers[0]!], additionalSecretOutputs: ["stdout"] },
    );
    this.kubeconfig = pulumi.secret(
      readKubeconfig.stdout.apply((k) => rewriteKubeconfig(k, config.apiEndpoint, name)),
    );
    this.ready = this.agents.length ? this.agents : servers;
    this.provider = new k8s.Provider(
      `${name}-provider`,
      { kubeconfig: this.kubeconfig },
      { parent: this, dependsOn: [...this.ready] },
    );

    this.gpuPools = k3sGpuPools(config);
    for (const p of this.gpuPools) new GpuPool(`${name}-pool-${p.name}`, p, { parent: this });

    this.registerOutputs({
      distribution: this.distribution,
      apiEndpoint: this.apiEndpoint,
      servers: config.servers.map((s) => s.name),
      pools: config.pools.map((p) => p.name),
      gpuPools: this.gpuPools.map((p) => p.name),
      kubeconfig: this.kubeconfig,
    });
  }

  private copyAirgap(
    name: string,
    node: K3sNode,
    airgap: NonNullable<K3sClusterConfig["airgap"]>,
    remote: AirgapPaths,
    connection: (host: string) => command.types.input.remote.ConnectionArgs,
  ): command.remote.CopyToRemote[] {
    const files: [string, string, string][] = [
      ["binary", airgap.binaryPath, remote.binary],
      ["install-script", airgap.installScriptPath, remote.installScript],
      ...(airgap.imagesPath && remote.images
        ? [["images", airgap.imagesPath, remote.images] as [string, string, string]]
        : []),
    ];
    return files.map(
      ([role, local, remotePath]) =>
        new command.remote.CopyToRemote(
          `${name}-${node.name}-airgap-${role}`,
          { connection: connection(node.address), source: new pulumi.asset.FileAsset(local), remotePath },
          { parent: this },
        ),
    );
  }
}
