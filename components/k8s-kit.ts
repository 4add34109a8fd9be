/**
 * Small Kubernetes helpers shared by components: a pinned Helm chart from `versions.ts` and a custom
 * resource with the recommended labels, so no component repeats the plumbing.
 */
import * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import { appLabels } from "./meta";
import type { ChartVersion } from "./versions";

/** A chart pinned in versions.ts, installed as `release` into `namespace` with typed `values`. */
export function pinnedChart<V extends object>(
  name: string,
  pin: ChartVersion,
  args: { release: string; namespace: string; values: V },
  opts: pulumi.ComponentResourceOptions,
): k8s.helm.v4.Chart {
  return new k8s.helm.v4.Chart(
    name,
    {
      name: args.release,
      chart: pin.chart,
      version: pin.version,
      repositoryOpts: { repo: pin.repo },
      namespace: args.namespace,
      values: args.values as Record<string, pulumi.Input<unknown>>,
    },
    opts,
  );
}

/** A namespaced custom resource labelled with appLabels(`objectName`, `component`). */
export function customResource(
  name: string,
  args: {
    apiVersion: string;
    kind: string;
    objectName: string;
    namespace?: string;
    component: string;
    labels?: Record<string, string>;
    spec: Record<string, unknown>;
  },
  opts: pulumi.CustomResourceOptions,
): k8s.apiextensions.CustomResource {
  return new k8s.apiextensions.CustomResource(
    name,
    {
      apiVersion: args.apiVersion,
      kind: args.kind,
      metadata: {
        name: args.objectName,
        ...(args.namespace ? { namespace: args.namespace } : {}),
        labels: { ...appLabels(args.objectName, args.component), ...(args.labels ?? {}) },
      },
      spec: args.spec,
    },
    opts,
  );
}
