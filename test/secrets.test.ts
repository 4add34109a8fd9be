import * as k8s from "@pulumi/kubernetes";
import { PUBLIC_TLS } from "./stack-overrides";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { ConfigError, parsePlatformConfig } from "../components/config";
import { externalSecretsSchema } from "../components/secrets/schema";
import {
  clusterSecretStoreProvider,
  externalSecretsValues,
  SecretStore,
  stableSecretName,
} from "../components/secrets/store";
import { chartImages, charts } from "../components/versions";
import { isSecretWrapped, render, renderStack } from "./harness";
import { chartValuesKeys, unverifiedValuesKeys } from "./fixtures/chart-values-keys";
import { existingClusterFor } from "./stack-overrides";

const SECRET = "kubernetes:core/v1:Secret";

describe("SecretStore", () => {
  it("names stack secrets stably", () => {
    expect(stableSecretName("alertWebhookUrl")).toBe("platform-alert-webhook-url");
    expect(stableSecretName("hfToken")).toBe("platform-hf-token");
  });

  it("turns a stack secret into a namespaced Secret with typed references", async () => {
    let ref: ReturnType<SecretStore["fromConfig"]> | undefined;
    const r = await render(() => {
      const store = new SecretStore("s", {
        provider: new k8s.Provider("k8s", {}),
        secrets: { hfToken: pulumi.secret("hf_example_value") },
      });
      ref = store.fromConfig("hfToken", "inference");
    });
    const secret = r.get(SECRET, "inference-platform-hf-token");
    expect(r.plain(secret)["metadata"]).toMatchObject({ name: "platform-hf-token", namespace: "inference" });
    expect(r.plain(secret)["stringData"]).toEqual({ value: "hf_example_value" });
    const data = secret.inputs["stringData"] as Record<string, unknown>;
    expect(isSecretWrapped(data) || isSecretWrapped(data["value"])).toBe(true);
    expect(ref!.env("HF_TOKEN", "value")).toEqual({
      name: "HF_TOKEN",
      valueFrom: { secretKeyRef: { name: "platform-hf-token", key: "value" } },
    });
    expect(ref!.volume("hf", ["value"])).toEqual({
      name: "hf",
      secret: {
        secretName: "platform-hf-token",
        defaultMode: 0o400,
        items: [{ key: "value", path: "value" }],
      },
    });
  });

  it("fails with the key to set when the stack secret is missing", async () => {
    let error: unknown;
    await render(() => {
      const store = new SecretStore("s", { provider: new k8s.Provider("k8s", {}) });
      try {
        store.fromConfig("alertWebhookUrl", "monitoring");
      } catch (e) {
        error = e;
      }
    });
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/platform:alertWebhookUrl/);
  });

  it("mints generated credentials with RandomPassword into one Secret", async () => {
    const r = await render(() => {
      new SecretStore("s", { provider: new k8s.Provider("k8s", {}) }).generated("db", "data", {
        passwords: { password: { length: 40 } },
        literals: { username: "app" },
      });
    });
    const pw = r.get("random:index/randomPassword:RandomPassword", "s-data-db-password");
    expect(r.plain(pw)["length"]).toBe(40);
    const secret = r.plain(r.get(SECRET, "data-db"));
    expect(Object.keys(secret["stringData"] as object).sort()).toEqual(["password", "username"]);
  });

  it("rejects the same Secret twice", async () => {
    let error: unknown;
    const r = await render(() => {
      const store = new SecretStore("s", { provider: new k8s.Provider("k8s", {}) });
      store.secret("a", "ns", { k: "v" });
      try {
        store.secret("a", "ns", { k: "v" });
      } catch (e) {
        error = e;
      }
    });
    expect((error as Error).message).toMatch(/ns\/a is defined twice/);
    expect(r.ofType(SECRET)).toHaveLength(1);
  });
});

describe("External Secrets Operator", () => {
  it("installs the pinned chart and a ClusterSecretStore when enabled", async () => {
    const r = await render(() => {
      new SecretStore("s", {
        provider: new k8s.Provider("k8s", {}),
        externalSecrets: externalSecretsSchema.parse({ enabled: true, server: "https://vault.example.org" }),
      });
    });
    const chart = r.plain(r.get("kubernetes:helm.sh/v4:Chart", "s-external-secrets"));
    expect(chart["version"]).toBe(charts.externalSecrets.version);
    expect(chart["namespace"]).toBe("external-secrets");
    // Every key checked against the pinned chart (a bump re-checks them).
    expect(chartValuesKeys.externalSecrets.version).toBe(charts.externalSecrets.version);
    expect(unverifiedValuesKeys(chart["values"] as object, chartValuesKeys.externalSecrets)).toEqual([]);
    const store = r.plain(
      r.get("kubernetes:external-secrets.io/v1:ClusterSecretStore", "s-cluster-secret-store"),
    );
    expect(store["metadata"]["name"]).toBe("platform");
    expect(store["spec"]["provider"]["vault"]).toMatchObject({
      server: "https://vault.example.org",
      path: "secret",
      version: "v2",
      auth: { kubernetes: { role: "external-secrets" } },
    });
    const ns = r.plain(r.get("kubernetes:core/v1:Namespace", "ns-external-secrets"))["metadata"];
    expect(ns.labels["pod-security.kubernetes.io/enforce"]).toBe("restricted");
  });

  it("runs the operator's one image by its digest once traced; until then the chart's own", () => {
    const image = chartImages.externalSecrets.images.externalSecrets as { tag: string; digest?: string };
    const parts = (v: ReturnType<typeof externalSecretsValues>) => [
      v.image,
      v.webhook.image,
      v.certController.image,
    ];
    // Untraced today (versions.ts says why): nothing set, the chart renders its appVersion tag.
    if (!image.digest) expect(parts(externalSecretsValues())).toEqual([undefined, undefined, undefined]);
    // With a digest recorded, the chart (`repository:tag`, no flavour) gets it in the tag, for the
    // controller, its webhook and its cert controller alike.
    const saved = image.digest;
    image.digest = `sha256:${"ef".repeat(32)}`;
    try {
      const tag = { tag: `v2.9.0@${image.digest}` };
      expect(parts(externalSecretsValues())).toEqual([tag, tag, tag]);
    } finally {
      if (saved === undefined) delete image.digest;
      else image.digest = saved;
    }
  });

  it("is absent unless enabled", async () => {
    const r = await render(() => {
      new SecretStore("s", {
        provider: new k8s.Provider("k8s", {}),
        externalSecrets: externalSecretsSchema.parse({}),
      });
    });
    expect(r.ofType("kubernetes:helm.sh/v4:Chart")).toHaveLength(0);
  });

  it("maps each backend to its provider block", () => {
    const p = (x: object) => clusterSecretStoreProvider(externalSecretsSchema.parse({ enabled: true, ...x }));
    expect(p({ provider: "aws", region: "eu-west-1" })).toMatchObject({
      aws: { service: "SecretsManager", region: "eu-west-1" },
    });
    expect(p({ provider: "gcp", projectId: "acme" })).toEqual({ gcpsm: { projectID: "acme" } });
    expect(p({ provider: "azure", server: "https://acme.vault.azure.net" })).toMatchObject({
      azurekv: { vaultUrl: "https://acme.vault.azure.net" },
    });
  });

  it("reports what a backend is missing, with the key path", () => {
    const cfg = (es: object) => ({
      "platform:environment": "prod",
      "platform:cluster": JSON.stringify({ kind: "existing" }),
      ...PUBLIC_TLS,
      "platform:secrets": JSON.stringify({ externalSecrets: { enabled: true, ...es } }),
    });
    const problems = (es: object) => {
      try {
        parsePlatformConfig(cfg(es), new Set(["acmeDnsApiToken"]));
        return [];
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).problems.map((p) => p.key);
      }
    };
    expect(problems({ provider: "vault" })).toEqual(["platform:secrets.externalSecrets.server"]);
    expect(problems({ provider: "aws" })).toEqual(["platform:secrets.externalSecrets.region"]);
    expect(problems({ provider: "vault", server: "https://vault.example.org" })).toEqual([]);
  });

  it("runs in prod", async () => {
    const r = await renderStack("prod", { overrides: existingClusterFor("prod") });
    expect(r.ofType("kubernetes:external-secrets.io/v1:ClusterSecretStore")).toHaveLength(1);
    expect(r.plan.secretLeaks).toEqual([]);
  });
});
