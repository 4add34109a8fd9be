import * as k8s from "@pulumi/kubernetes";
import { describe, expect, it } from "vitest";
import { ConfigError, parsePlatformConfig } from "../components/config";
import { SecretStore } from "../components/secrets/store";
import {
  ACME_DNS_TOKEN_KEY,
  ACME_DNS_TOKEN_SECRET,
  CertManager,
  certificateSpec,
  issuerObjects,
} from "../components/tls/cert-manager";
import { chartImages, charts } from "../components/versions";
import { validateObject } from "../tools/preflight/schemas";
import { render, renderStack, type Rendered } from "./harness";
import { existingClusterFor } from "./stack-overrides";

const CHART = "kubernetes:helm.sh/v4:Chart";
const CERT = "kubernetes:cert-manager.io/v1:Certificate";
const ISSUER = "kubernetes:cert-manager.io/v1:ClusterIssuer";
const GATEWAY = "kubernetes:networking.istio.io/v1beta1:Gateway";

const ACME = {
  email: "ops@example.org",
  server: "https://acme-v02.api.letsencrypt.org/directory",
  dns01: {
    provider: "cloudflare" as const,
    zones: ["example.org"],
    tokenSecret: { name: ACME_DNS_TOKEN_SECRET, key: ACME_DNS_TOKEN_KEY },
  },
};

describe("issuer objects", () => {
  it("self-signed: selfSigned issuer → CA certificate → CA issuer, all schema-valid", () => {
    const { objects, clusterIssuers } = issuerObjects({ selfSigned: true }, "cert-manager");
    expect(clusterIssuers).toEqual({ "self-signed": "platform-ca" });
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      "ClusterIssuer/platform-selfsigned",
      "Certificate/platform-ca",
      "ClusterIssuer/platform-ca",
    ]);
    for (const o of objects)
      expect(validateObject({ apiVersion: "cert-manager.io/v1", ...o, role: undefined })).toEqual({
        ok: true,
      });
  });

  it("acme: DNS-01 with the token from a Secret, never HTTP-01 (the gateway redirects port 80)", () => {
    const { objects, clusterIssuers } = issuerObjects({ selfSigned: false, acme: ACME }, "cert-manager");
    expect(clusterIssuers).toEqual({ acme: "platform-acme" });
    expect(objects).toHaveLength(1);
    expect(objects[0]!.spec).toEqual({
      acme: {
        email: "ops@example.org",
        server: "https://acme-v02.api.letsencrypt.org/directory",
        privateKeySecretRef: { name: "platform-acme-account" },
        solvers: [
          {
            dns01: { cloudflare: { apiTokenSecretRef: { name: "acme-dns01-token", key: "api-token" } } },
            selector: { dnsZones: ["example.org"] },
          },
        ],
      },
    });
    expect(JSON.stringify(objects)).not.toMatch(/http01/);
    expect(
      validateObject({
        apiVersion: "cert-manager.io/v1",
        kind: "ClusterIssuer",
        metadata: objects[0]!.metadata,
        spec: objects[0]!.spec,
      }),
    ).toEqual({ ok: true });
  });

  it("both issuers side by side, so each endpoint chooses its own", () => {
    const { clusterIssuers } = issuerObjects({ selfSigned: true, acme: ACME }, "cert-manager");
    expect(clusterIssuers).toEqual({ "self-signed": "platform-ca", acme: "platform-acme" });
  });

  it("a certificate needs a DNS name", () => {
    expect(() => certificateSpec("x-tls", [], "platform-ca")).toThrow(/at least one DNS name/);
  });
});

describe("CertManager", () => {
  it("installs the pinned chart with CRDs and issues certificates on request", async () => {
    let secretName = "";
    const r = await render(() => {
      const provider = new k8s.Provider("p", {});
      const tls = new CertManager("tls", { provider, issuers: { selfSigned: true } });
      secretName = tls.certificate("ingress", "istio-system", ["ai.example.org"], {
        issuer: "self-signed",
      }).secretName;
      expect(() =>
        tls.certificate("ingress", "istio-system", ["ai.example.org"], { issuer: "self-signed" }),
      ).toThrow(/twice/);
      expect(() => tls.certificate("other", "istio-system", ["x.example.org"], { issuer: "acme" })).toThrow(
        /does not run/,
      );
    });
    const chart = r.get(CHART, "tls-chart");
    expect(r.plain(chart)).toMatchObject({
      chart: charts.certManager.chart,
      version: charts.certManager.version,
      repositoryOpts: { repo: "https://charts.jetstack.io" },
      namespace: "cert-manager",
      values: { crds: { enabled: true } },
    });
    expect(secretName).toBe("ingress-tls");
    const cert = r.get(CERT, "tls-cert-istio-system-ingress");
    expect(r.plain(cert)).toMatchObject({
      metadata: { name: "ingress", namespace: "istio-system" },
      spec: { secretName: "ingress-tls", dnsNames: ["ai.example.org"], issuerRef: { name: "platform-ca" } },
    });
    // Custom resources wait for the chart that installs their CRDs (and the CA chain).
    expect(cert.dependsOn).toContain(chart.urn);
    expect(cert.dependsOn.some((u) => u.endsWith("tls-ca-issuer"))).toBe(true);
  });

  it("runs cert-manager's images by their traced digests, tags kept (on every stack)", async () => {
    const img = chartImages.certManager.images;
    const prod = await stack("prod");
    const values = prod.plain(prod.get(CHART, "prod-tls-chart"))["values"];
    // `tag` and `digest`: the chart renders `repository:tag@digest` (a digest alone would drop the tag).
    const pinned = (i: { tag: string; digest?: string }) => ({ tag: i.tag, digest: i.digest });
    expect(values.image).toEqual(pinned(img.controller));
    expect(values.webhook.image).toEqual(pinned(img.webhook));
    expect(values.cainjector.image).toEqual(pinned(img.cainjector));
    expect(values.startupapicheck.image).toEqual(pinned(img.startupapicheck));
    // The HTTP-01 solver's digest is untraced: nothing set, the chart's own reference stays.
    expect(values.acmesolver?.image).toEqual(img.acmesolver.digest ? pinned(img.acmesolver) : undefined);
    const local = await stack("local");
    expect(local.plain(local.get(CHART, "local-tls-chart"))["values"].image).toEqual(values.image);
  });

  it("acme: the DNS-01 token is a Secret in cert-manager's namespace, before the issuer", async () => {
    const r = await render(() => {
      const provider = new k8s.Provider("p", {});
      const secretStore = new SecretStore("s", { provider });
      new CertManager("tls", {
        provider,
        secretStore,
        issuers: {
          selfSigned: false,
          acme: { ...ACME, dns01: { provider: "cloudflare", zones: [] }, dnsApiToken: "dns-token" },
        },
      });
    });
    const secret = r.get("kubernetes:core/v1:Secret", `cert-manager-${ACME_DNS_TOKEN_SECRET}`);
    expect(r.plain(secret).metadata).toMatchObject({
      name: ACME_DNS_TOKEN_SECRET,
      namespace: "cert-manager",
    });
    expect(r.get(ISSUER, "tls-acme-issuer").dependsOn).toContain(secret.urn);
  });
});

const stacks: Partial<Record<string, Promise<Rendered>>> = {};
function stack(name: "local" | "dev" | "prod"): Promise<Rendered> {
  stacks[name] ??= renderStack(name, name === "local" ? {} : { overrides: existingClusterFor(name) });
  return stacks[name];
}

/** Hosts the mesh ingress Gateway serves (reached from outside the cluster), `*\/host` → host. */
function externalHosts(r: Rendered): string[] {
  return r
    .ofType(GATEWAY)
    .flatMap((g) => (r.plain(g).spec.servers as { hosts: string[] }[]).flatMap((s) => s.hosts))
    .map((h) => h.replace(/^[^/]*\//, ""));
}

describe("externally reached endpoints", () => {
  it.each(["dev", "prod"] as const)(
    "%s: every endpoint the ingress serves (registry push, the front end's API) has a publicly trusted certificate",
    async (name) => {
      const r = await stack(name);
      const hosts = externalHosts(r);
      expect(hosts.length).toBeGreaterThanOrEqual(2); // the ingress hostname and the registry
      const issuers = new Map(r.ofType(ISSUER).map((i) => [String(r.plain(i).metadata.name), r.plain(i)]));
      const certs = r.ofType(CERT).map((c) => r.plain(c));
      for (const host of hosts) {
        const covering = certs.filter((c) => ((c.spec.dnsNames as string[]) ?? []).includes(host));
        expect(covering.length, `${name}: no Certificate for ${host}`).toBeGreaterThan(0);
        for (const c of covering) {
          const issuer = issuers.get(String(c.spec.issuerRef.name));
          const acme = issuer?.spec.acme as
            { server: string; solvers: Record<string, unknown>[] } | undefined;
          expect(
            acme,
            `${name}: ${host} is signed by ${c.spec.issuerRef.name}, not a public CA`,
          ).toBeDefined();
          expect(acme!.server).not.toMatch(/staging/);
          // A challenge that works behind the HTTPS redirect and the registry's SNI passthrough.
          expect(acme!.solvers.every((s) => "dns01" in s)).toBe(true);
        }
      }
    },
    120_000,
  );

  it.each(["local", "dev", "prod"] as const)(
    "%s: every Certificate and ClusterIssuer is awaited until Ready, so `up` fails when one is not issued",
    async (name) => {
      const r = await stack(name);
      const objects = [...r.ofType(CERT), ...r.ofType(ISSUER)];
      expect(objects.length).toBeGreaterThan(0);
      for (const o of objects) {
        const annotations = r.plain(o).metadata.annotations as Record<string, string> | undefined;
        expect(annotations?.["pulumi.com/waitFor"], o.name).toBe("condition=Ready");
        expect(Number(annotations?.["pulumi.com/timeoutSeconds"])).toBeGreaterThan(0);
        expect(annotations?.["pulumi.com/skipAwait"]).toBeUndefined();
      }
    },
    120_000,
  );

  it("the ingress chooses its issuer apart from the registry's", async () => {
    const r = await renderStack("local", {
      overrides: {
        "platform:registry": { tls: { issuer: "acme" } },
        "platform:tls": { acme: { email: "ops@example.org", dns01: {} } },
      },
    });
    const issuerOf = (ns: string): string =>
      r
        .ofType(CERT)
        .map((c) => r.plain(c))
        .find((c) => c.metadata.namespace === ns && c.metadata.name !== "platform-ca")!.spec.issuerRef
        .name as string;
    expect(issuerOf("registry")).toBe("platform-acme");
    expect(issuerOf("istio-system")).toBe("platform-ca");
  }, 120_000);

  it("config refuses the self-signed CA on an external endpoint outside local, and acme without an account", () => {
    const problems = (raw: Record<string, unknown>) => {
      try {
        parsePlatformConfig(
          Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, JSON.stringify(v)])),
          new Set(["acmeDnsApiToken"]),
        );
        return [];
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).problems.map((p) => p.key);
      }
    };
    const base = {
      "platform:environment": "dev",
      "platform:cluster": { kind: "existing" },
      "platform:inference": { gateway: { enabled: false } },
    };
    expect(problems(base)).toEqual(["platform:registry.tls.issuer", "platform:tls.ingress.issuer"]);
    expect(
      problems({
        ...base,
        "platform:registry": { tls: { issuer: "acme" } },
        "platform:tls": { ingress: { issuer: "acme" } },
      }),
    ).toEqual(["platform:tls.acme"]);
    expect(
      problems({
        ...base,
        "platform:registry": { tls: { issuer: "acme" } },
        "platform:tls": {
          acme: {
            email: "a@example.org",
            server: "https://acme-staging-v02.api.letsencrypt.org/directory",
            dns01: {},
          },
          ingress: { issuer: "acme" },
        },
      }),
    ).toEqual(["platform:tls.acme.server"]);
    expect(problems({ ...base, "platform:environment": "local" })).toEqual([]);
  });
});
