/**
 * K3s over SSH: one server (or three with embedded etcd), agent pools with labels and taints, GPU
 * pools tainted and labelled for the NVIDIA stack. Every host is one remote.Command whose create and
 * update run the same idempotent install (so a version or node-config change re-runs it on that
 * host) and whose delete uninstalls K3s. Secret material (cluster token, registry credentials)
 * travels on the command's stdin, never in its command line.
 *
 * Day-2 safety:
 * - Node labels and taints are Kubernetes objects (a NodePatch per agent), not install flags: K3s
 *   applies `node-label`/`node-taint` only when a node registers. Only the GPU taint is also set at
 *   registration, so nothing lands on a GPU node before its patch exists.
 * - A node's identity is its name; its address only says where SSH connects. A server's address and
 *   the first server (the one that ran cluster-init) are remembered, and a change is refused before
 *   anything runs (reinstalling there would wipe a server's etcd member or start a second cluster).
 *   Safe procedure to move or replace a server: drain it, remove it from `servers` (`pulumi up`
 *   uninstalls it and it leaves etcd), `kubectl delete node <name>`, then add the new host under a new
 *   name. The first server is never replaced in place: add the new servers first, then rebuild.
 * - Agents roll one at a time: each agent's install waits for the previous one, so a shared input
 *   (version, API endpoint, registry credentials) never restarts every agent at once.
 * - The program's kubeconfig authenticates with a ServiceAccount token (cluster-admin), created once
 *   over SSH with the server's own admin credentials. The admin client certificate in k3s.yaml is
 *   valid 365 days and K3s renews it only on the host; a copy kept in state would fail every preview
 *   after a year. A token Secret of type kubernetes.io/service-account-token does not expire, and
 *   is revoked by deleting it (`pulumi up` after a replace of the `deployer-token` command).
 */
import { createHash } from "node:crypto";
import { basename } from "node:path";
import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { parse, stringify } from "yaml";
import { ConfigError, type ConfigProblem } from "../config";
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
/** The ServiceAccount the program's kubeconfig authenticates as (kube-system, cluster-admin). */
export const DEPLOYER_SERVICE_ACCOUNT = "platform-deployer";
export const DEPLOYER_TOKEN_SECRET = "platform-deployer-token";
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
 * Taints a node registers with: only the GPU taint, so no pod lands on a GPU node in the moment
 * between its registration and its NodePatch. Everything else (pool labels, GPU sharing labels, extra
 * taints) is the NodePatch's: K3s applies `node-label`/`node-taint` only at registration, and putting
 * them in config.yaml would reinstall the host on every change without changing the node.
 */
export function registrationTaints(node: K3sNode): Taint[] {
  return node.taints.filter((t) => t.key === GPU_TAINT.key && t.effect === GPU_TAINT.effect);
}

/** The Node fields the platform owns after join (a NodePatch, server-side apply). */
export function nodePatchSpec(node: K3sNode): {
  metadata: { name: string; labels: Record<string, string>; annotations: Record<string, string> };
  spec: { taints: { key: string; value?: string; effect: string }[] };
} {
  return {
    metadata: {
      name: node.name,
      labels: { ...node.labels },
      // Taints are an atomic list: take it over from the kubelet's registration.
      annotations: { "pulumi.com/patchForce": "true" },
    },
    spec: {
      taints: node.taints.map((t) => ({
        key: t.key,
        ...(t.value === undefined ? {} : { value: t.value }),
        effect: t.effect,
      })),
    },
  };
}

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
  const taints = registrationTaints(node);
  const common = {
    "node-name": node.name,
    "token-file": TOKEN_FILE,
    ...(taints.length ? { "node-taint": taints.map(taintString) } : {}),
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

/**
 * The script (create and update) that makes the deployer ServiceAccount, its cluster-admin binding and
 * a long-lived token Secret with the server's own kubectl, waits for the token controller and prints
 * `{"token": <base64>, "ca": <base64>}`. Idempotent (kubectl apply); the output is a secret.
 */
export function deployerTokenScript(): string {
  const sa = DEPLOYER_SERVICE_ACCOUNT;
  const manifest = stringify({
    apiVersion: "v1",
    kind: "List",
    items: [
      { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: sa, namespace: "kube-system" } },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: { name: sa },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
        subjects: [{ kind: "ServiceAccount", name: sa, namespace: "kube-system" }],
      },
      {
        apiVersion: "v1",
        kind: "Secret",
        type: "kubernetes.io/service-account-token",
        metadata: {
          name: DEPLOYER_TOKEN_SECRET,
          namespace: "kube-system",
          annotations: { "kubernetes.io/service-account.name": sa },
        },
      },
    ],
  });
  const get = (field: string) =>
    `$SUDO k3s kubectl -n kube-system get secret ${DEPLOYER_TOKEN_SECRET} -o jsonpath='{.data.${field}}'`;
  return [
    "set -eu",
    SUDO,
    "$SUDO k3s kubectl apply -f - >/dev/null <<'DEPLOYER'",
    manifest.trimEnd(),
    "DEPLOYER",
    "i=0",
    `until TOKEN=$(${get("token")}) && [ -n "$TOKEN" ]; do`,
    `  i=$((i + 1)); [ "$i" -lt 60 ] || { echo "no token in kube-system/${DEPLOYER_TOKEN_SECRET} after 120s" >&2; exit 1; }`,
    "  sleep 2",
    "done",
    `CA=$(${get("ca\\.crt")})`,
    `printf '{"token":"%s","ca":"%s"}\\n' "$TOKEN" "$CA"`,
  ].join("\n");
}

/** The delete script: revoke the token (best effort: the server may already be gone). */
export function deployerTokenDeleteScript(): string {
  return [
    SUDO,
    `$SUDO k3s kubectl -n kube-system delete secret ${DEPLOYER_TOKEN_SECRET} --ignore-not-found || true`,
    `$SUDO k3s kubectl delete clusterrolebinding ${DEPLOYER_SERVICE_ACCOUNT} --ignore-not-found || true`,
    `$SUDO k3s kubectl -n kube-system delete serviceaccount ${DEPLOYER_SERVICE_ACCOUNT} --ignore-not-found || true`,
  ].join("\n");
}

/** A kubeconfig that authenticates with a bearer token (no client certificate, nothing that expires). */
export function tokenKubeconfig(deployer: string, apiEndpoint: string, contextName: string): string {
  const { token, ca } = JSON.parse(deployer.trim()) as { token: string; ca: string };
  const user = `${contextName}-${DEPLOYER_SERVICE_ACCOUNT}`;
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      { name: contextName, cluster: { server: apiUrl(apiEndpoint), "certificate-authority-data": ca } },
    ],
    users: [{ name: user, user: { token: Buffer.from(token, "base64").toString("utf8") } }],
    contexts: [{ name: contextName, context: { cluster: contextName, user } }],
    "current-context": contextName,
  });
}

/** What the state remembers of the servers: which one initialised the cluster, and each one's address. */
export interface ServerIdentity {
  readonly initServer: string;
  readonly addresses: Readonly<Record<string, string>>;
}

export function serverIdentity(config: K3sClusterConfig): ServerIdentity {
  return {
    initServer: config.servers[0]!.name,
    addresses: Object.fromEntries(config.servers.map((s) => [s.name, s.address])),
  };
}

/**
 * Changes to the servers that would destroy data if carried out: another first server (K3s would
 * run cluster-init again: a second, empty cluster) or a server at another address (the old host's
 * uninstall wipes its etcd member). Servers added or removed are fine.
 */
export function serverIdentityProblems(recorded: ServerIdentity, config: K3sClusterConfig): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const procedure =
    "drain the node, remove it from platform:cluster.servers (`pulumi up` uninstalls it), `kubectl delete node`, then add the new host under a new name";
  if (config.servers[0]!.name !== recorded.initServer)
    out.push({
      key: "platform:cluster.servers[0].name",
      message: `the first server "${recorded.initServer}" initialised this cluster; making "${config.servers[0]!.name}" the first would run cluster-init again and start a second, empty cluster. Keep "${recorded.initServer}" first; to retire it, add the new servers after it, move workloads, then rebuild the cluster`,
    });
  config.servers.forEach((s, i) => {
    const before = recorded.addresses[s.name];
    if (before !== undefined && before !== s.address)
      out.push({
        key: `platform:cluster.servers[${i}].address`,
        message: `server "${s.name}" was installed at ${before}; moving it to ${s.address} would uninstall K3s from ${before} and wipe its etcd member. To move a server: ${procedure}`,
      });
  });
  return out;
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
  /** What the recorded server identity says against this config (a non-empty list fails the run). */
  public readonly identityProblems: pulumi.Output<ConfigProblem[]>;
  /** Each agent's labels and taints, applied through the Kubernetes API after it joined. */
  public readonly nodePatches: readonly k8s.core.v1.NodePatch[];

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

    // Remembered at first install (ignoreChanges keeps the recorded value); every run compares.
    const identity = new random.RandomId(
      `${name}-server-identity`,
      { byteLength: 4, keepers: { identity: JSON.stringify(serverIdentity(config)) } },
      { parent: this, ignoreChanges: ["keepers"] },
    );
    this.identityProblems = identity.keepers.apply((k) => {
      const recorded = k?.["identity"];
      return typeof recorded === "string"
        ? serverIdentityProblems(JSON.parse(recorded) as ServerIdentity, config)
        : [];
    });
    const identityChecked = this.identityProblems.apply((problems) => {
      if (problems.length > 0) throw new ConfigError(problems);
      return "ok";
    });

    const nodeCommand = (node: K3sNode, dependsOn: pulumi.Resource[]): command.remote.Command => {
      const nodeConfig = k3sNodeConfig(node, config, { disableTraefik: args.disableTraefik });
      const copies =
        config.airgap && airgap ? this.copyAirgap(name, node, config.airgap, airgap, connection) : [];
      // No `triggers`: @pulumi/command replaces on any trigger change, and a replace runs the old
      // resource's delete (K3s's uninstaller) right after the new install on the same host. What a
      // re-run depends on is in the script instead, so a change is an update (the idempotent install).
      const base = installScript(node, nodeConfig, { version, ...(airgap ? { airgap } : {}) });
      const stamp = `# platform: k3s ${version}, inputs ${configHash(nodeConfig, config.airgap ?? null, registryKey)}`;
      // Servers: no install before the identity check passed (a refused change runs nothing).
      const script =
        node.role === "server"
          ? pulumi.interpolate`${base}\n${stamp}, identity ${identityChecked}`
          : pulumi.output(`${base}\n${stamp}`);
      return new command.remote.Command(
        `${name}-${node.name}-install`,
        {
          connection: connection(node.address),
          create: script,
          update: script,
          delete: uninstallScript(node.role),
          stdin,
          logging: "stderr",
        },
        node.role === "server"
          ? // The address is where SSH connects, not who the server is (see serverIdentityProblems).
            { parent: this, dependsOn: [...dependsOn, ...copies, identity] }
          : {
              parent: this,
              dependsOn: [...dependsOn, ...copies],
              // An agent moved to another host: uninstall from the old one first, then install.
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
    const agentNodes = nodes.filter((n) => n.role === "agent");
    const agents: command.remote.Command[] = [];
    for (const node of agentNodes) {
      // One at a time: a shared input change (version, endpoint, registry) rolls, never all at once.
      const previous = agents[agents.length - 1];
      agents.push(nodeCommand(node, [...servers, ...(previous ? [previous] : [])]));
    }
    this.agents = agents;

    const first = config.servers[0]!;
    const deployerScript = deployerTokenScript();
    const deployer = new command.remote.Command(
      `${name}-deployer-token`,
      {
        connection: connection(first.address),
        create: deployerScript,
        // An update re-applies (never a replace: its delete would revoke the token just made).
        update: deployerScript,
        delete: deployerTokenDeleteScript(),
        // No triggers (a trigger change replaces, and the old one's delete would revoke the token).
        logging: "none",
      },
      { parent: this, dependsOn: [servers[0]!], additionalSecretOutputs: ["stdout"] },
    );
    this.kubeconfig = pulumi.secret(
      deployer.stdout.apply((out) => tokenKubeconfig(out, config.apiEndpoint, name)),
    );
    const joined = this.agents.length ? this.agents : servers;
    this.provider = new k8s.Provider(
      `${name}-provider`,
      { kubeconfig: this.kubeconfig },
      { parent: this, dependsOn: [...joined] },
    );
    this.nodePatches = agentNodes.map((node, i) => {
      const patch = nodePatchSpec(node);
      return new k8s.core.v1.NodePatch(
        `${name}-${node.name}-node`,
        { metadata: patch.metadata, spec: patch.spec },
        { parent: this, provider: this.provider, dependsOn: [agents[i]!] },
      );
    });
    this.ready = [...joined, ...this.nodePatches];

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
