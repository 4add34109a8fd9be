import { describe, expect, it } from "vitest";
import { deployment, goodPodSpec, helmChart, workload, WORKLOAD_KINDS } from "./fixtures";
import { validate, validateStack } from "./helper";

const CR = "kubernetes:apiextensions.k8s.io:CustomResource";
const pa = (name: string, namespace: string, spec: Record<string, unknown>, type = CR) => ({
  type,
  name,
  props: {
    apiVersion: "security.istio.io/v1",
    kind: "PeerAuthentication",
    metadata: { name, namespace },
    spec,
  },
});
const namespace = (name: string, labels: Record<string, string> = {}) => ({
  type: "kubernetes:core/v1:Namespace",
  name,
  props: { metadata: { name, labels } },
});

describe("mesh-strict-mtls", () => {
  const P = "mesh-strict-mtls";
  it.each(["PERMISSIVE", "DISABLE"])("flags mode %s", async (mode) => {
    expect((await validate(P, pa("p", "apps", { mtls: { mode } }))).violations).toHaveLength(1);
  });
  it("flags port-level PERMISSIVE and typed CR tokens", async () => {
    const r = await validate(
      P,
      pa(
        "p",
        "apps",
        { mtls: { mode: "STRICT" }, portLevelMtls: { "9090": { mode: "PERMISSIVE" } } },
        "kubernetes:security.istio.io/v1:PeerAuthentication",
      ),
    );
    expect(r.violations).toEqual(["PeerAuthentication sets portLevelMtls[9090].mode PERMISSIVE"]);
  });
  it("passes STRICT and UNSET", async () => {
    expect((await validate(P, pa("p", "apps", { mtls: { mode: "STRICT" } }))).violations).toEqual([]);
    expect((await validate(P, pa("p", "apps", { mtls: { mode: "UNSET" } }))).violations).toEqual([]);
  });
  it("is not applicable to other CRs", async () => {
    const vs = {
      type: CR,
      props: { apiVersion: "networking.istio.io/v1", kind: "VirtualService", spec: {} },
    };
    expect((await validate(P, vs)).notApplicable).toBeDefined();
  });
  describe("stack: mesh-wide STRICT", () => {
    const istiod = helmChart({}, "istiod", { namespace: "istio-system" });
    it("requires the default STRICT policy when istiod is installed", async () => {
      expect((await validateStack(P, [istiod])).violations).toHaveLength(1);
      expect(
        (await validateStack(P, [istiod, pa("default", "istio-system", { mtls: { mode: "STRICT" } })]))
          .violations,
      ).toEqual([]);
    });
    it("requires it when any Istio CR is present", async () => {
      const vs = {
        type: CR,
        props: {
          apiVersion: "networking.istio.io/v1",
          kind: "VirtualService",
          metadata: { name: "v" },
          spec: {},
        },
      };
      expect((await validateStack(P, [vs])).violations).toHaveLength(1);
    });
    it("does not accept a PERMISSIVE, selector-scoped or misplaced default", async () => {
      for (const p of [
        pa("default", "istio-system", { mtls: { mode: "PERMISSIVE" } }),
        pa("default", "istio-system", { selector: { matchLabels: { app: "x" } }, mtls: { mode: "STRICT" } }),
        pa("default", "apps", { mtls: { mode: "STRICT" } }),
      ]) {
        expect((await validateStack(P, [istiod, p])).violations).toHaveLength(1);
      }
    });
    it("is silent without a mesh, or when configured off", async () => {
      expect((await validateStack(P, [deployment()])).violations).toEqual([]);
      expect((await validateStack(P, [istiod], { config: { requireMeshWide: false } })).violations).toEqual(
        [],
      );
    });
  });
});

describe("mesh-sidecar-injection", () => {
  const P = "mesh-sidecar-injection";
  it.each<Record<string, string>>([
    { "istio-injection": "enabled" },
    { "istio.io/rev": "1-24" },
    { "istio.io/dataplane-mode": "ambient" },
  ])("passes a namespace labelled %o", async (labels) => {
    expect((await validate(P, namespace("apps", labels))).violations).toEqual([]);
  });
  it("flags unlabelled and disabled workload namespaces", async () => {
    expect((await validate(P, namespace("apps"))).violations).toHaveLength(1);
    expect((await validate(P, namespace("apps", { "istio-injection": "disabled" }))).violations).toEqual([
      expect.stringContaining("disables injection"),
    ]);
  });
  it("exempts system namespaces from config", async () => {
    const config = { exemptions: [{ namespace: "kube-system", reason: "system components" }] };
    expect((await validate(P, namespace("kube-system"), { config })).notApplicable).toContain(
      "system components",
    );
  });
  it.each(WORKLOAD_KINDS)("flags a %s opting out", async (kind) => {
    const w = workload(kind, goodPodSpec(), {
      podMeta: { annotations: { "sidecar.istio.io/inject": "false" } },
    });
    expect((await validate(P, w)).violations).toEqual([expect.stringContaining("opts out")]);
  });
  it("flags the label form and passes pods that do not opt out", async () => {
    const w = deployment(goodPodSpec(), { podMeta: { labels: { "sidecar.istio.io/inject": "false" } } });
    expect((await validate(P, w)).violations).toHaveLength(1);
    expect((await validate(P, deployment())).violations).toEqual([]);
  });
});
