import * as k8s from "@pulumi/kubernetes";
import { describe, expect, it } from "vitest";
import { CertManager, certificateSpec, issuerObjects } from "../components/tls/cert-manager";
import { charts } from "../components/versions";
import { validateObject } from "../tools/preflight/schemas";
import { render } from "./harness";

const CHART = "kubernetes:helm.sh/v4:Chart";
const CERT = "kubernetes:cert-manager.io/v1:Certificate";

describe("issuer objects", () => {
  it("self-signed: selfSigned issuer → CA certificate → CA issuer, all schema-valid", () => {
    const { objects, clusterIssuer } = issuerObjects({ kind: "self-signed" }, "cert-manager");
    expect(clusterIssuer).toBe("platform-ca");
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

  it("acme: one ClusterIssuer with the configured email and server", () => {
    const { objects, clusterIssuer } = issuerObjects(
      {
        kind: "acme",
        email: "ops@example.org",
        server: "https://acme-staging.example/dir",
        ingressClass: "istio",
      },
      "cert-manager",
    );
    expect(clusterIssuer).toBe("platform-acme");
    expect(objects).toHaveLength(1);
    expect(objects[0]!.spec).toMatchObject({
      acme: { email: "ops@example.org", server: "https://acme-staging.example/dir" },
    });
    expect(
      validateObject({
        apiVersion: "cert-manager.io/v1",
        kind: "ClusterIssuer",
        metadata: objects[0]!.metadata,
        spec: objects[0]!.spec,
      }),
    ).toEqual({ ok: true });
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
      const tls = new CertManager("tls", { provider, issuer: { kind: "self-signed" } });
      secretName = tls.certificate("ingress", "istio-system", ["ai.example.org"]).secretName;
      expect(() => tls.certificate("ingress", "istio-system", ["ai.example.org"])).toThrow(/twice/);
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
});
