import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  deployment,
  FAKE,
  goodContainer,
  goodPodSpec,
  helmChart,
  workload,
  WORKLOAD_KINDS,
} from "./fixtures";
import { record, remediate, runPack, validate } from "./helper";

const FIXTURES = path.join(__dirname, "fixtures", "docker");
const configMap = (data: Record<string, string>, extra: Record<string, unknown> = {}) => ({
  type: "kubernetes:core/v1:ConfigMap",
  props: { metadata: { name: "cfg", namespace: "apps" }, data, ...extra },
});

describe("no-plaintext-secrets", () => {
  const P = "no-plaintext-secrets";

  it.each([
    ["a GitHub token in a ConfigMap", configMap({ note: FAKE.githubToken }), "a GitHub token"],
    [
      "a Slack token in an annotation",
      {
        type: "kubernetes:core/v1:Service",
        props: { metadata: { name: "s", annotations: { hook: FAKE.slackToken } } },
      },
      "a Slack token",
    ],
    [
      "a JWT in a container arg",
      deployment(goodPodSpec({ containers: [goodContainer({ args: ["--bearer", FAKE.jwt] })] })),
      "JSON Web Token",
    ],
    ["a PEM private key in a ConfigMap", configMap({ "tls.key": FAKE.privateKey }), "private key"],
    [
      "a PEM private key in JSON text (escaped line breaks)",
      configMap({ "creds.json": JSON.stringify({ key: FAKE.privateKey }) }),
      "private key",
    ],
    [
      "a high-entropy value under a secret-like key",
      {
        type: "kubernetes:apiextensions.k8s.io:CustomResource",
        props: { apiVersion: "example.com/v1", kind: "Thing", spec: { apiKey: "q8Zr2LmX0vPk4TyW" } },
      },
      "apiKey",
    ],
    [
      "a password assignment in a remote command",
      {
        type: "command:remote:Command",
        props: {
          create: `echo DB_PASSWORD=${FAKE.password} > /etc/app.env`,
          connection: { host: "10.0.0.1" },
        },
      },
      "DB_PASSWORD",
    ],
    [
      "a database URL with credentials in Helm values",
      helmChart({ config: { dsn: FAKE.dbUrl } }),
      "URL with a password",
    ],
    [
      "credentials in a URL inside a command line",
      configMap({ "run.sh": "curl -fsS https://deploy:Hq7vR2xW9kLm@artifacts.example.org/x.tgz" }),
      "URL with a password",
    ],
    [
      "a token in a GitHub variable",
      {
        type: "github:index/actionsVariable:ActionsVariable",
        props: { repository: "r", variableName: "X", value: FAKE.githubToken },
      },
      "a GitHub token",
    ],
  ])("flags %s", async (_what, resource, expected) => {
    const r = await validate(P, resource);
    expect(r.violations.length).toBeGreaterThan(0);
    expect(r.violations.join("\n")).toContain(expected);
    // Messages never carry the value.
    for (const secret of Object.values(FAKE)) expect(r.violations.join("\n")).not.toContain(secret);
  });

  it.each([
    [
      "a Kubernetes Secret's data (sink)",
      {
        type: "kubernetes:core/v1:Secret",
        props: { metadata: { name: "s" }, stringData: { token: FAKE.githubToken, key: FAKE.privateKey } },
      },
    ],
    [
      "an Actions secret's plaintextValue (sink)",
      {
        type: "github:index/actionsSecret:ActionsSecret",
        props: { repository: "r", secretName: "T", plaintextValue: FAKE.githubToken },
      },
    ],
    [
      "a sensitive Vercel variable (sink)",
      {
        type: "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable",
        props: {
          projectId: "p",
          key: "API_TOKEN",
          value: FAKE.githubToken,
          sensitive: true,
          targets: ["production"],
        },
      },
    ],
    [
      "a remote command's private key (sink)",
      {
        type: "command:remote:Command",
        props: { create: "uptime", connection: { host: "h", privateKey: FAKE.privateKey } },
      },
    ],
    [
      "the kubeconfig of a provider (sink)",
      {
        type: "pulumi:providers:kubernetes",
        props: { kubeconfig: `users:\n- name: a\n  user:\n    token: ${FAKE.jwt}` },
      },
    ],
    [
      "a reference under a secret-like key",
      configMap({ "app.env": "DB_PASSWORD=${DB_PASSWORD}\nAPI_TOKEN_FILE=/run/secrets/token" }),
    ],
    [
      "low-entropy settings under secret-like keys",
      {
        type: "kubernetes:apiextensions.k8s.io:CustomResource",
        props: {
          apiVersion: "x/v1",
          kind: "Y",
          spec: {
            auth: { type: "oidc", tokenTTL: "24h" },
            passwordPolicy: "strong",
            secretName: "db-credentials",
          },
        },
      },
    ],
    [
      "a key's armour around a placeholder (external-secrets' CRD descriptions)",
      configMap({
        example:
          '{"private-key": "-----BEGIN PRIVATE KEY-----\\n<private-key>\\n-----END PRIVATE KEY-----\\n"}',
      }),
    ],
    [
      "the namespace a secret lives in (external-secrets' cert controller)",
      deployment(
        goodPodSpec({ containers: [goodContainer({ args: ["--secret-namespace=external-secrets"] })] }),
      ),
    ],
    [
      "URLs whose password is a placeholder or a reference",
      configMap({
        a: "postgres://app:${DB_PASSWORD}@db:5432/app",
        b: "https://user:<password>@host.example.org",
        c: "redis://:****@cache:6379",
        d: "https://{{ .Values.user }}:{{ .Values.password }}@h.example.org",
      }),
    ],
    [
      "a component resource (its children are checked)",
      { type: "platform:registry:Registry", props: { password: FAKE.password } },
    ],
    ["a well-formed compliant Deployment", deployment()],
  ])("passes %s", async (_what, resource) => {
    expect((await validate(P, resource)).violations).toEqual([]);
  });

  it("ignores values matching allowPatterns", async () => {
    const r = configMap({ token: FAKE.githubToken });
    expect((await validate(P, r)).violations).not.toEqual([]);
    expect((await validate(P, r, { config: { allowPatterns: ["^ghp_"] } })).violations).toEqual([]);
  });

  it("honours the entropy threshold", async () => {
    const r = {
      type: "kubernetes:apiextensions.k8s.io:CustomResource",
      props: { apiVersion: "x/v1", kind: "Y", spec: { password: "SuperSecret123" } },
    };
    expect((await validate(P, r)).violations).toHaveLength(1);
    expect((await validate(P, r, { config: { entropyThreshold: 4.5 } })).violations).toEqual([]);
  });

  it("reads a `<namespace>/<name>` reference under a *-from-secret key as a reference (cert-manager's CA injection)", async () => {
    // What the cert-manager chart renders on its webhook configurations; a false positive found by
    // running the pack over rendered charts.
    const r = {
      type: "kubernetes:admissionregistration.k8s.io/v1:ValidatingWebhookConfiguration",
      props: {
        metadata: {
          name: "cert-manager-webhook",
          annotations: { "cert-manager.io/inject-ca-from-secret": "cert-manager/cert-manager-webhook-ca" },
        },
      },
    };
    expect((await validate(P, r)).violations).toEqual([]);
    const leaky = {
      ...r,
      props: { metadata: { name: "w", annotations: { "x/secret": "Zq8vN3xR7tLp2Wc9" } } },
    };
    expect((await validate(P, leaky)).violations).toHaveLength(1);
  });

  it("does not trip over preview unknowns", async () => {
    const r = configMap({ token: "x", other: FAKE.githubToken });
    const res = await validate(P, r, { unknown: [["data", "token"]] });
    expect(res.previewNotes).toEqual([]);
    expect(res.violations).toHaveLength(1);
  });
});

describe("k8s-env-no-literal-secrets", () => {
  const P = "k8s-env-no-literal-secrets";
  const env = (e: unknown[]) => goodPodSpec({ containers: [goodContainer({ env: e })] });

  it.each(WORKLOAD_KINDS)("flags a literal DB_PASSWORD in a %s", async (kind) => {
    const r = await validate(P, workload(kind, env([{ name: "DB_PASSWORD", value: "hunter2hunter2" }])));
    expect(r.violations).toHaveLength(1);
    expect(r.violations[0]).toContain("DB_PASSWORD");
    expect(r.violations[0]).not.toContain("hunter2");
  });

  it("flags init containers too", async () => {
    const spec = goodPodSpec({
      initContainers: [goodContainer({ name: "migrate", env: [{ name: "API_KEY", value: "abc123def" }] })],
    });
    expect((await validate(P, deployment(spec))).violations[0]).toContain('initContainer "migrate"');
  });

  it.each([
    [
      "valueFrom.secretKeyRef",
      [{ name: "DB_PASSWORD", valueFrom: { secretKeyRef: { name: "db", key: "password" } } }],
    ],
    ["a file path", [{ name: "DB_PASSWORD_FILE", value: "/run/secrets/db/password" }]],
    [
      "a credentials path",
      [{ name: "GOOGLE_APPLICATION_CREDENTIALS", value: "/var/run/secrets/gcp/key.json" }],
    ],
    ["an interpolation", [{ name: "TOKEN", value: "$(GENERATED_TOKEN)" }]],
    [
      "non-secret names",
      [
        { name: "LOG_LEVEL", value: "debug" },
        { name: "AUTH_ENABLED", value: "true" },
      ],
    ],
    ["an empty value", [{ name: "API_TOKEN", value: "" }]],
  ])("passes %s", async (_what, e) => {
    expect((await validate(P, deployment(env(e)))).violations).toEqual([]);
  });

  it("checks env lists in Helm chart values", async () => {
    const chart = helmChart({
      server: {
        env: [
          { name: "ADMIN_PASSWORD", value: "s3cr3t-value" },
          { name: "MODE", value: "x" },
        ],
      },
    });
    const r = await validate(P, chart);
    expect(r.violations).toHaveLength(1);
    expect(r.violations[0]).toContain("values.server.env[0]");
  });

  it("respects allowNames", async () => {
    const r = deployment(env([{ name: "DEMO_LICENSE_TOKEN", value: "trial-2024-q3" }]));
    expect((await validate(P, r)).violations).toHaveLength(1);
    expect((await validate(P, r, { config: { allowNames: ["DEMO_*"] } })).violations).toEqual([]);
  });

  it("skips values unknown during preview", async () => {
    const r = deployment(env([{ name: "DB_PASSWORD", value: "x" }]));
    const res = await validate(P, r, {
      unknown: [["spec", "template", "spec", "containers", 0, "env", 0, "value"]],
    });
    expect(res).toMatchObject({ violations: [], previewNotes: [] });
  });

  it("is not applicable to non-workloads", async () => {
    expect(
      (await validate(P, { type: "kubernetes:core/v1:Service", props: {} })).notApplicable,
    ).toBeDefined();
  });
});

describe("k8s-configmap-no-secrets", () => {
  const P = "k8s-configmap-no-secrets";
  it.each([
    ["a password key", { "db.password": "Qm7xL2pZ9vK4" }, "db.password"],
    [
      "an api_key line in a config file",
      { "app.ini": "[server]\nport = 8080\napi_key = 8fK2mQ9xLp4ZvR7t\n" },
      "api_key",
    ],
    ["a private key file", { id_rsa: FAKE.privateKey }, "private key"],
    ["a GitHub token", { "settings.json": JSON.stringify({ gh: FAKE.githubToken }) }, "a GitHub token"],
  ])("flags %s", async (_what, data, expected) => {
    const r = await validate(P, configMap(data));
    expect(r.violations).toHaveLength(1);
    expect(r.violations[0]).toContain(expected);
  });

  it("decodes binaryData", async () => {
    const r = configMap(
      {},
      { binaryData: { creds: Buffer.from(`token: ${FAKE.githubToken}`).toString("base64") } },
    );
    expect((await validate(P, r)).violations).toHaveLength(1);
  });

  it("passes ordinary configuration", async () => {
    const r = configMap({
      "nginx.conf": "server { listen 8080; }",
      LOG_LEVEL: "info",
      PASSWORD_MIN_LENGTH: "12",
      secretName: "db",
    });
    expect((await validate(P, r)).violations).toEqual([]);
  });

  it("is not applicable to Secrets", async () => {
    expect(
      (await validate(P, { type: "kubernetes:core/v1:Secret", props: { data: { p: "x" } } })).notApplicable,
    ).toBeDefined();
  });
});

describe("k8s-secrets-as-files", () => {
  const P = "k8s-secrets-as-files";
  it.each(WORKLOAD_KINDS)("flags secretKeyRef and envFrom.secretRef in a %s", async (kind) => {
    const spec = goodPodSpec({
      containers: [
        goodContainer({
          env: [{ name: "DB_PASSWORD", valueFrom: { secretKeyRef: { name: "db", key: "password" } } }],
          envFrom: [{ secretRef: { name: "api" } }, { configMapRef: { name: "cfg" } }],
        }),
      ],
    });
    const r = await validate(P, workload(kind, spec));
    expect(r.violations).toHaveLength(2);
  });

  it("passes Secrets mounted as files", async () => {
    const spec = goodPodSpec({
      volumes: [{ name: "db", secret: { secretName: "db" } }],
      containers: [
        goodContainer({ volumeMounts: [{ name: "db", mountPath: "/run/secrets/db", readOnly: true }] }),
      ],
    });
    expect((await validate(P, deployment(spec))).violations).toEqual([]);
  });

  it("respects allowEnvNames", async () => {
    const spec = goodPodSpec({
      containers: [
        goodContainer({
          env: [{ name: "NATS_TOKEN", valueFrom: { secretKeyRef: { name: "n", key: "t" } } }],
        }),
      ],
    });
    expect(
      (await validate(P, deployment(spec), { config: { allowEnvNames: ["NATS_*"] } })).violations,
    ).toEqual([]);
  });
});

describe("helm-values-no-secrets", () => {
  const P = "helm-values-no-secrets";
  it.each([
    ["adminPassword", { adminPassword: "Adm1n-Passw0rd" }, "values.adminPassword"],
    [
      "nested auth.password",
      { auth: { username: "app", password: "hunter2hunter2" } },
      "values.auth.password",
    ],
    [
      "a token under an innocuous key (content)",
      { extraConfig: { slackHook: FAKE.slackToken } },
      "values.extraConfig.slackHook",
    ],
    ["a Helm v3 Release", { redis: { auth: { password: "r3dis-pass" } } }, "values.redis.auth.password"],
  ])("flags %s", async (what, values, expected) => {
    const res = what.includes("v3")
      ? { ...helmChart(values), type: "kubernetes:helm.sh/v3:Release" }
      : helmChart(values);
    const r = await validate(P, res);
    expect(r.violations).toHaveLength(1);
    expect(r.violations[0]).toContain(expected);
  });

  it.each([
    [
      "existingSecret",
      { admin: { existingSecret: "grafana-admin", userKey: "user", passwordKey: "password" } },
    ],
    [
      "auth.existingSecret with key names",
      { auth: { existingSecret: "redis", existingSecretPasswordKey: "redis-password", enabled: true } },
    ],
    ["empty passwords", { adminPassword: "", auth: { password: "" } }],
    ["settings", { auth: { type: "oidc", tokenTTL: "1h" }, persistence: { enabled: true, size: "10Gi" } }],
  ])("passes %s", async (_what, values) => {
    expect((await validate(P, helmChart(values))).violations).toEqual([]);
  });

  it("respects allowKeys", async () => {
    const chart = helmChart({ demo: { password: "demo-demo-demo" } });
    expect((await validate(P, chart, { config: { allowKeys: ["demo.password"] } })).violations).toEqual([]);
  });

  it("is not applicable outside Helm", async () => {
    expect((await validate(P, deployment())).notApplicable).toBeDefined();
  });
});

describe("github-variable-no-secrets", () => {
  const P = "github-variable-no-secrets";
  const variable = (
    variableName: string,
    value: string,
    type = "github:index/actionsVariable:ActionsVariable",
  ) => ({
    type,
    props: { repository: "platform", variableName, value },
  });
  it.each([
    ["a secret-like name", variable("DEPLOY_TOKEN", "tok-2f9a8b7c6d")],
    ["a token value", variable("SOMETHING", FAKE.githubToken)],
    [
      "an environment variable",
      variable(
        "REGISTRY_PASSWORD",
        "hunter2hunter2",
        "github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable",
      ),
    ],
  ])("flags %s", async (_what, r) => {
    expect((await validate(P, r)).violations).toHaveLength(1);
  });
  it.each([
    ["a region", variable("AWS_REGION", "eu-west-1")],
    ["an image name", variable("IMAGE", "ghcr.io/acme/gateway")],
    ["a URL under a token-ish name", variable("TOKEN_URL", "https://auth.example.com/token")],
  ])("passes %s", async (_what, r) => {
    expect((await validate(P, r)).violations).toEqual([]);
  });
  it("is not applicable to Actions secrets", async () => {
    const r = {
      type: "github:index/actionsSecret:ActionsSecret",
      props: { secretName: "T", plaintextValue: "x" },
    };
    expect((await validate(P, r)).notApplicable).toBeDefined();
  });
});

describe("vercel-env-sensitive", () => {
  const P = "vercel-env-sensitive";
  const VAR = "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable";
  const v = (key: string, value: string, extra: Record<string, unknown> = {}) => ({
    type: VAR,
    props: { projectId: "prj", key, value, targets: ["production", "preview", "development"], ...extra },
  });

  it("flags a secret-like variable that is not sensitive", async () => {
    expect((await validate(P, v("API_TOKEN", "tok_8f7e6d5c4b"))).violations).toHaveLength(1);
    expect((await validate(P, v("ANYTHING", FAKE.jwt))).violations).toHaveLength(1);
  });

  it("passes sensitive and public variables", async () => {
    expect((await validate(P, v("API_TOKEN", "tok_8f7e6d5c4b", { sensitive: true }))).violations).toEqual([]);
    expect((await validate(P, v("NEXT_PUBLIC_API_URL", "https://api.example.com"))).violations).toEqual([]);
  });

  it("remediates: sensitive, no development target, value still secret", async () => {
    const r = await remediate(P, v("API_TOKEN", "tok_8f7e6d5c4b"), { secrets: [["value"]] });
    expect(r.props).toMatchObject({
      sensitive: true,
      targets: ["production", "preview"],
      value: "tok_8f7e6d5c4b",
    });
    expect(r.secretPaths).toContain("value");
    expect((await validate(P, { type: VAR, props: r.props! })).violations).toEqual([]);
  });

  it("remediates a secret-like variable whose value is unknown in preview", async () => {
    const r = await remediate(P, v("DATABASE_PASSWORD", "x"), { unknown: [["value"]] });
    expect(r.props).toMatchObject({ sensitive: true });
  });

  it("leaves public variables alone", async () => {
    expect((await remediate(P, v("NEXT_PUBLIC_SITE", "acme"))).props).toBeUndefined();
  });

  it("remediates entries of ProjectEnvironmentVariables", async () => {
    const res = {
      type: "vercel:index/projectEnvironmentVariables:ProjectEnvironmentVariables",
      props: {
        projectId: "p",
        variables: [
          { key: "SESSION_SECRET", value: "aB3dE5gH7jK9mN1p", targets: ["production"] },
          { key: "PUBLIC", value: "x", targets: ["production"] },
        ],
      },
    };
    expect((await validate(P, res)).violations).toHaveLength(1);
    const r = await remediate(P, res);
    expect(r.props?.["variables"]).toEqual([
      { key: "SESSION_SECRET", value: "aB3dE5gH7jK9mN1p", targets: ["production"], sensitive: true },
      { key: "PUBLIC", value: "x", targets: ["production"] },
    ]);
  });

  it("runs as remediate in the pack: remediated, then clean", async () => {
    const violations = await runPack([record(VAR, "api-token", v("API_TOKEN", "tok_8f7e6d5c4b").props)]);
    expect(violations.filter((x) => x.policy === P)).toEqual([
      expect.objectContaining({ level: "remediate", message: expect.stringContaining("remediated") }),
    ]);
    expect(violations.filter((x) => x.level === "mandatory")).toEqual([]);
  });
});

describe("docker-build-args-no-secrets", () => {
  const P = "docker-build-args-no-secrets";
  const image = (args: Record<string, string>, dir = "good") => ({
    type: "docker:index/image:Image",
    props: { imageName: "ghcr.io/acme/app:1.0.0", build: { context: path.join(FIXTURES, dir), args } },
  });
  it("flags secret-like build args and credential values", async () => {
    const r = await validate(
      P,
      image({ NPM_TOKEN: "npm-abc123", NODE_VERSION: "20", EXTRA: FAKE.githubToken }),
    );
    expect(r.violations).toHaveLength(2);
    expect(r.violations.join("\n")).toContain("NPM_TOKEN");
    expect(r.violations.join("\n")).toContain("EXTRA");
  });
  it("flags ENV/ARG defaults with secrets in the Dockerfile", async () => {
    const r = await validate(P, image({}, "args"));
    expect(r.violations).toEqual([expect.stringContaining("ENV API_TOKEN")]);
  });
  it("passes ordinary args", async () => {
    expect((await validate(P, image({ NODE_VERSION: "20.18.1", GIT_SHA: "4f2a9c1" }))).violations).toEqual(
      [],
    );
  });
});
