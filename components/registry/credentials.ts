/**
 * Registry credentials. The in-cluster registry's push/pull password is generated (never asked
 * for) before the cluster exists, because K3s nodes get it in registries.yaml at install time.
 */
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

/** The one user of the in-cluster registry (push from CI/Pulumi, pull from nodes and pods). */
export const REGISTRY_USERNAME = "platform";

export interface RegistryCredentials {
  readonly username: string;
  /** Always a Pulumi secret. */
  readonly password: pulumi.Output<string>;
  /** `user:bcrypt` line for the registry's htpasswd file; a Pulumi secret. */
  readonly htpasswd: pulumi.Output<string>;
}

/** A generated password and its htpasswd line. Call once per stack, before the cluster. */
export function registryCredentials(name: string, opts?: pulumi.CustomResourceOptions): RegistryCredentials {
  const password = new random.RandomPassword(
    `${name}-registry-password`,
    // No special characters: the password lands in YAML, JSON and basic-auth headers unescaped.
    { length: 32, special: false },
    opts,
  );
  return {
    username: REGISTRY_USERNAME,
    password: pulumi.secret(password.result),
    htpasswd: pulumi.secret(pulumi.interpolate`${REGISTRY_USERNAME}:${password.bcryptHash}`),
  };
}

/** Credentials to push to and pull from a registry. */
export interface RegistryAuth {
  /** Registry host (with port when not 443), as image references name it. */
  readonly server: string;
  readonly username: pulumi.Input<string>;
  readonly password: pulumi.Input<string>;
}

/** The `.dockerconfigjson` document for one registry (pure; see dockerConfigJson for the secret). */
export function dockerConfigDocument(server: string, username: string, password: string): string {
  const auth = Buffer.from(`${username}:${password}`).toString("base64");
  return JSON.stringify({ auths: { [server]: { username, password, auth } } });
}

/** The `.dockerconfigjson` for pulls, built inside an apply on the secret so it stays secret. */
export function dockerConfigJson(auth: RegistryAuth): pulumi.Output<string> {
  return pulumi.secret(
    pulumi
      .all([auth.username, auth.password])
      .apply(([user, password]) => dockerConfigDocument(auth.server, user, password)),
  );
}

/**
 * What K3s nodes need in registries.yaml (mirror + auth) to pull from the platform's registry. The
 * Platform computes it before the cluster and hands it to the cluster component
 * (`K3sClusterArgs.registry`); nothing here knows how the cluster writes it.
 */
export interface NodeRegistryAccess {
  readonly hostname: string;
  readonly username: string;
  /** A Pulumi secret. */
  readonly password: pulumi.Output<string>;
  /**
   * True with the self-signed CA: it is minted by cert-manager inside the cluster, after the nodes
   * are installed, so containerd cannot be given it up front. ACME and external registries verify.
   */
  readonly insecureSkipVerify: boolean;
}

export function nodeRegistryAccess(
  registry: {
    mode: "in-cluster" | "external";
    hostname: string;
    tls: { issuer: string };
    external?: { server: string; username: string };
  },
  credentials: Pick<RegistryCredentials, "username" | "password">,
): NodeRegistryAccess {
  const external = registry.mode === "external";
  return {
    hostname: external ? registry.external!.server : registry.hostname,
    username: credentials.username,
    password: pulumi.secret(credentials.password),
    insecureSkipVerify: !external && registry.tls.issuer === "self-signed",
  };
}
