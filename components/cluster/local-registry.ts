/**
 * Laptop clusters (k3d, kind) pull with their nodes' containerd, which knows nothing of the
 * in-cluster registry: no registries.yaml is written there (the platform does not install those
 * nodes). What each one needs, created with the cluster:
 * - k3d: `k3d cluster create --registry-config registries.yaml` (K3s's registries.yaml format).
 * - kind: a `containerdConfigPatches` entry in the kind cluster config.
 * The registry's certificate is self-signed in-cluster, so TLS verification is skipped for it alone;
 * the registry hostname must resolve on the nodes to the ingress (e.g. an /etc/hosts entry).
 */
import { stringify } from "yaml";

export interface LocalRegistrySetup {
  readonly distribution: "k3d" | "kind";
  /** File name and content to create the cluster with (holds the pull password: a secret). */
  readonly file: { readonly name: string; readonly content: string };
  /** The command that creates the cluster with it. */
  readonly command: string;
  /** One line for the preflight and the README: what the local cluster needs. */
  readonly summary: string;
}

export function localRegistrySetup(
  distribution: string,
  registry: { hostname: string; username: string; password: string },
): LocalRegistrySetup | undefined {
  const { hostname, username, password } = registry;
  if (distribution === "k3d")
    return {
      distribution,
      file: {
        name: "registries.yaml",
        content: stringify({
          mirrors: { [hostname]: { endpoint: [`https://${hostname}`] } },
          configs: { [hostname]: { auth: { username, password }, tls: { insecure_skip_verify: true } } },
        }),
      },
      command: "k3d cluster create platform --registry-config registries.yaml",
      summary: `k3d nodes pull from ${hostname} only with a registries.yaml given at create time (--registry-config): write the stack output localRegistrySetup.file and recreate the cluster with localRegistrySetup.command`,
    };
  if (distribution === "kind") {
    const base = `plugins."io.containerd.grpc.v1.cri".registry.configs."${hostname}"`;
    return {
      distribution,
      file: {
        name: "kind-config.yaml",
        content: stringify({
          kind: "Cluster",
          apiVersion: "kind.x-k8s.io/v1alpha4",
          containerdConfigPatches: [
            `[${base}.auth]\n  username = "${username}"\n  password = "${password}"\n[${base}.tls]\n  insecure_skip_verify = true\n`,
          ],
        }),
      },
      command: "kind create cluster --name platform --config kind-config.yaml",
      summary: `kind nodes pull from ${hostname} only with a containerd config patch: write the stack output localRegistrySetup.file and recreate the cluster with localRegistrySetup.command`,
    };
  }
  return undefined;
}
