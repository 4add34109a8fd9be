import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { renderReadme } from "../tools/config-docs";
import { SECRET_KEYS, platformSchema } from "../components/config";

describe("README", () => {
  const readme = readFileSync("README.md", "utf8");

  it("has the config reference generated from the current schema", async () => {
    expect(await renderReadme(readme)).toBe(readme);
  });

  it("documents every top-level and secret key", () => {
    for (const key of [...Object.keys(platformSchema.shape), ...Object.keys(SECRET_KEYS)])
      expect(readme).toContain(`platform:${key}`);
  });

  it("gives exactly the two quick-start commands", () => {
    expect(readme).toContain("npm ci && npm run preflight");
    expect(readme).toContain("npm ci && npm test");
  });
});
