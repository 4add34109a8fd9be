/**
 * The one way components put credentials into Kubernetes: stack secrets and generated credentials
 * become namespaced `Secret`s with stable names, and consumers get typed references (secretKeyRef,
 * volumes) instead of building Secret plumbing by hand.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { appLabels } from "../meta";

export interface SecretRef {
  readonly name: string;
  readonly namespace: string;
  /** The Secret resource, for dependsOn. */
  readonly resource: k8s.core.v1.Secret;
  /** `valueFrom.secretKeyRef` for a container env var. */
  env(envName: string, key: string): k8s.types.input.core.v1.EnvVar;
  /** A pod volume of the Secret (mode 0400), optionally only some keys. */
  volume(volumeName: string, keys?: readonly string[]): k8s.types.input.core.v1.Volume;
}

export interface SecretStoreArgs {
  /** Provider of the cluster the Secrets live in. */
  readonly provider: k8s.Provider;
}

/** The reference helpers, pure so tests can check them without a runtime. */
export function secretKeyRef(
  secretName: string,
  envName: string,
  key: string,
): k8s.types.input.core.v1.EnvVar {
  return { name: envName, valueFrom: { secretKeyRef: { name: secretName, key } } };
}

export function secretVolume(
  secretName: string,
  volumeName: string,
  keys?: readonly string[],
): k8s.types.input.core.v1.Volume {
  return {
    name: volumeName,
    secret: {
      secretName,
      defaultMode: 0o400,
      ...(keys ? { items: keys.map((key) => ({ key, path: key })) } : {}),
    },
  };
}

export class SecretStore extends pulumi.ComponentResource {
  private readonly provider: k8s.Provider;
  private readonly refs = new Map<string, SecretRef>();

  constructor(name: string, args: SecretStoreArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:secrets:SecretStore", name, {}, opts);
    this.provider = args.provider;
    this.registerOutputs({});
  }

  /**
   * A Secret `name` in `namespace` holding `data` (string values, wrapped as Pulumi secrets).
   * Asking twice for the same namespace/name is a bug and throws.
   */
  secret(
    name: string,
    namespace: pulumi.Input<string> & string,
    data: Record<string, pulumi.Input<string>>,
    options: { type?: string; dependsOn?: pulumi.Input<pulumi.Resource>[]; component?: string } = {},
  ): SecretRef {
    const id = `${namespace}/${name}`;
    if (this.refs.has(id)) throw new Error(`secret ${id} is defined twice`);
    const stringData: Record<string, pulumi.Output<string>> = {};
    for (const [k, v] of Object.entries(data)) stringData[k] = pulumi.secret(v);
    const resource = new k8s.core.v1.Secret(
      `${namespace}-${name}`,
      {
        metadata: { name, namespace, labels: appLabels(name, options.component ?? "secret") },
        type: options.type ?? "Opaque",
        stringData,
      },
      {
        parent: this,
        provider: this.provider,
        ...(options.dependsOn ? { dependsOn: options.dependsOn } : {}),
      },
    );
    const ref: SecretRef = {
      name,
      namespace,
      resource,
      env: (envName, key) => secretKeyRef(name, envName, key),
      volume: (volumeName, keys) => secretVolume(name, volumeName, keys),
    };
    this.refs.set(id, ref);
    return ref;
  }
}
