/**
 * Image pull access for the platform's workloads: a `kubernetes.io/dockerconfigjson` Secret in every
 * workload namespace and a ServiceAccount that references it, so a workload only names the
 * ServiceAccount and never handles registry credentials.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { appLabels } from "../meta";
import type { SecretStore } from "../secrets/store";

/** Name of the pull Secret in each workload namespace. */
export const PULL_SECRET_NAME = "registry-pull";
/** ServiceAccount first-party workloads run as; it carries the pull secret. */
export const WORKLOAD_SERVICE_ACCOUNT = "platform-workload";
export const DOCKER_CONFIG_JSON_TYPE = "kubernetes.io/dockerconfigjson";

export interface PullSecretsArgs {
  /** Provider of the cluster. */
  readonly provider: k8s.Provider;
  /** Namespaces that run first-party workloads (they must exist; see dependsOn). */
  readonly namespaces: readonly string[];
  /** The registry's `.dockerconfigjson` (a Pulumi secret). */
  readonly dockerConfigJson: pulumi.Input<string>;
  readonly secretStore: SecretStore;
  /** The namespaces' resources, and anything else the Secrets wait for. */
  readonly dependsOn?: readonly pulumi.Resource[];
}

/** Pull Secret + ServiceAccount per workload namespace. */
export class PullSecrets extends pulumi.ComponentResource {
  /** ServiceAccount name workloads set as `serviceAccountName` (the same in every namespace). */
  public readonly serviceAccountName = WORKLOAD_SERVICE_ACCOUNT;
  public readonly secretName = PULL_SECRET_NAME;
  /** The ServiceAccounts by namespace, for dependsOn. */
  public readonly serviceAccounts: Readonly<Record<string, k8s.core.v1.ServiceAccount>>;

  constructor(name: string, args: PullSecretsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:registry:PullSecrets", name, {}, opts);
    const accounts: Record<string, k8s.core.v1.ServiceAccount> = {};
    for (const ns of args.namespaces) {
      const secret = args.secretStore.secret(
        PULL_SECRET_NAME,
        ns,
        { ".dockerconfigjson": args.dockerConfigJson },
        { type: DOCKER_CONFIG_JSON_TYPE, component: "registry", dependsOn: [...(args.dependsOn ?? [])] },
      );
      accounts[ns] = new k8s.core.v1.ServiceAccount(
        `${name}-${ns}-sa`,
        {
          metadata: {
            name: WORKLOAD_SERVICE_ACCOUNT,
            namespace: ns,
            labels: appLabels(WORKLOAD_SERVICE_ACCOUNT, "workloads"),
          },
          imagePullSecrets: [{ name: secret.name }],
          // Workloads that talk to the API server opt in on their own ServiceAccount.
          automountServiceAccountToken: false,
        },
        { parent: this, provider: args.provider, dependsOn: [secret.resource, ...(args.dependsOn ?? [])] },
      );
    }
    this.serviceAccounts = accounts;
    this.registerOutputs({ serviceAccountName: this.serviceAccountName, namespaces: [...args.namespaces] });
  }
}
