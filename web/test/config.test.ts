import { describe, expect, it } from "vitest";
import { errorMessage } from "../lib/api";
import { type ConfigResult, readConfig } from "../lib/config";
import { retryAfterSeconds } from "../lib/gateway";

const KEY = "sk-0123456789abcdef0123";

const problems = (r: ConfigResult) => (r.ok ? [] : r.problems.map((p) => p.message));

describe("readConfig", () => {
  it("reads a valid configuration, normalising the URL", () => {
    expect(
      readConfig({
        GATEWAY_URL: "https://ai.example.org/",
        GATEWAY_API_KEY: KEY,
        GATEWAY_MODELS: "llama-3.1-8b-instruct, qwen2.5-7b-instruct,llama-3.1-8b-instruct",
      }),
    ).toEqual({
      ok: true,
      config: {
        gatewayUrl: "https://ai.example.org",
        apiKey: KEY,
        models: ["llama-3.1-8b-instruct", "qwen2.5-7b-instruct"],
      },
    });
    const at = (u: string) => {
      const r = readConfig({ GATEWAY_URL: u, GATEWAY_API_KEY: KEY });
      return r.ok ? r.config.gatewayUrl : r.problems;
    };
    expect(at("http://gateway.inference.svc.cluster.local")).toBe(
      "http://gateway.inference.svc.cluster.local",
    );
    expect(at("https://ai.example.org/v1")).toBe("https://ai.example.org");
    expect(at("https://example.org/ai/v1/")).toBe("https://example.org/ai");
  });

  it("names each missing variable", () => {
    const r = readConfig({});
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.problems.map((p) => p.variable)).toEqual(["GATEWAY_URL", "GATEWAY_API_KEY"]);
    expect(problems(r)[0]).toMatch(/^GATEWAY_URL is not set: .*e\.g\. https:\/\//);
    expect(problems(r)[1]).toMatch(/^GATEWAY_API_KEY is not set/);
  });

  it.each([
    ["not a url", /GATEWAY_URL is not a valid absolute URL/],
    ["ftp://ai.example.org", /GATEWAY_URL must be an http:\/\/ or https:\/\/ URL, not ftp:\/\//],
    ["https://user:hunter2@ai.example.org", /GATEWAY_URL must not carry credentials/],
    ["https://ai.example.org/?x=1", /GATEWAY_URL must not have a query/],
  ])("rejects GATEWAY_URL %s", (url, message) => {
    const p = problems(readConfig({ GATEWAY_URL: url, GATEWAY_API_KEY: KEY }));
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(message);
    expect(p[0]).not.toContain("hunter2");
  });

  it.each([
    [`${KEY}\n`, /GATEWAY_API_KEY is malformed: it contains whitespace/],
    ["sk-short", /GATEWAY_API_KEY is malformed: 8 characters/],
  ])("rejects GATEWAY_API_KEY %j, without echoing it", (key, message) => {
    const p = problems(readConfig({ GATEWAY_URL: "https://ai.example.org", GATEWAY_API_KEY: key }));
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(message);
    expect(p[0]).not.toContain(key.trim());
  });

  it("rejects a malformed GATEWAY_MODELS and a key meant for the browser", () => {
    const base = { GATEWAY_URL: "https://ai.example.org", GATEWAY_API_KEY: KEY };
    expect(problems(readConfig({ ...base, GATEWAY_MODELS: "llama,,qwen" }))).toEqual([
      expect.stringMatching(/^GATEWAY_MODELS is malformed: an empty entry/),
    ]);
    expect(problems(readConfig({ ...base, GATEWAY_MODELS: "llama 3" }))).toEqual([
      expect.stringMatching(/^GATEWAY_MODELS is malformed: "llama 3" is not a model id/),
    ]);
    expect(problems(readConfig({ ...base, NEXT_PUBLIC_GATEWAY_API_KEY: KEY }))).toEqual([
      expect.stringMatching(/^NEXT_PUBLIC_GATEWAY_API_KEY is set: .* sent to the browser/),
    ]);
  });
});

describe("helpers", () => {
  it("retryAfterSeconds reads seconds and HTTP dates, bounded", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(retryAfterSeconds("7", now)).toBe(7);
    expect(retryAfterSeconds("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30);
    expect(retryAfterSeconds("99999", now)).toBe(3600);
    expect(retryAfterSeconds("soon", now)).toBeUndefined();
    expect(retryAfterSeconds(null, now)).toBeUndefined();
  });

  it("errorMessage shows the route's message, short text, or a generic line for HTML", () => {
    expect(errorMessage(JSON.stringify({ error: { code: "x", message: "Try again in 7 s." } }))).toBe(
      "Try again in 7 s.",
    );
    expect(errorMessage("plain failure")).toBe("plain failure");
    expect(errorMessage("<html>502</html>", 502)).toBe("The app's server answered 502.");
  });
});
