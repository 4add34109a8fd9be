/**
 * The app end to end in Debian's Chromium (driven by playwright-core): the production build of web/
 * (`next build`, once per run, served by its standalone server.js as the image runs it), the real
 * gateway (services/gateway, api and worker roles as their own processes, as its tests start them), a
 * real nats-server, and a fake model backend that streams slowly enough to watch.
 *
 * Screenshots go to out/web-e2e/ (git-ignored), as the run's artefacts.
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { accessSync, constants, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, type BrowserContext, type Page, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GatewayProcess, spawnGateway, waitForHttp200 } from "../../services/gateway/test/helpers/child";
import { type NatsServer, freePort, startNatsServer } from "../../services/gateway/test/helpers/nats-server";
import { type ModelCall, ModelBackend } from "./helpers/model-backend";

const WEB = join(__dirname, "..");
const OUT = join(WEB, "..", "out", "web-e2e");
const CHROMIUM = process.env["CHROMIUM_BIN"] ?? "/usr/bin/chromium";
const KEY = `sk-web-e2e-${randomBytes(16).toString("hex")}`;
/** What the gateway serves (its MODELS, all allowed to the app's key): the picker's list. */
const MODELS = ["slow-echo", "fail-500"];

/** Throws (never skips) without the browser: the suite needs it, as the gateway tests need nats-server. */
function chromiumBinary(): string {
  try {
    accessSync(CHROMIUM, constants.X_OK);
    return CHROMIUM;
  } catch {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: install it (Debian: apt-get install -y chromium) or set CHROMIUM_BIN. ` +
        "The web end-to-end test needs a real browser and is never skipped.",
    );
  }
}

/** A child process whose output is kept for error messages (the shape the gateway helpers wait on). */
function run(args: string[], opts: { cwd: string; env: Record<string, string> }): GatewayProcess {
  const proc = spawn(process.execPath, args, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  return { proc, output: () => out, exited };
}

async function stop(p: GatewayProcess | undefined): Promise<void> {
  if (!p || p.proc.exitCode !== null || p.proc.signalCode !== null) return;
  p.proc.kill("SIGTERM");
  const t = setTimeout(() => p.proc.kill("SIGKILL"), 5000);
  await p.exited;
  clearTimeout(t);
}

const seconds = (since: number) => ((Date.now() - since) / 1000).toFixed(1);

/** `next build` of web/ (production, standalone), with the static assets where server.js serves them. */
async function buildWeb(): Promise<void> {
  const next = createRequire(join(WEB, "package.json")).resolve("next/dist/bin/next");
  const started = Date.now();
  const build = run([next, "build"], {
    cwd: WEB,
    // The build must not need the gateway or the network: no GATEWAY_* here, no telemetry.
    env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", NEXT_TELEMETRY_DISABLED: "1" },
  });
  const code = await build.exited;
  if (code !== 0) throw new Error(`next build failed (${code}):\n${build.output()}`);
  // What the Dockerfile does: server.js serves .next/static from next to itself.
  const standalone = join(WEB, ".next", "standalone", "web");
  rmSync(join(standalone, ".next", "static"), { recursive: true, force: true });
  cpSync(join(WEB, ".next", "static"), join(standalone, ".next", "static"), { recursive: true });
  console.log(`web e2e: next build took ${seconds(started)} s`);
}

/** The standalone server on a free loopback port, with `env` as its whole configuration. */
async function startWeb(env: Record<string, string>): Promise<{ url: string; p: GatewayProcess }> {
  const port = await freePort();
  const p = run([join(WEB, ".next", "standalone", "web", "server.js")], {
    cwd: join(WEB, ".next", "standalone", "web"),
    env: {
      PATH: process.env["PATH"] ?? "",
      PORT: String(port),
      HOSTNAME: "127.0.0.1",
      NEXT_TELEMETRY_DISABLED: "1",
      ...env,
    },
  });
  const url = `http://127.0.0.1:${port}`;
  // /api/health is 503 while misconfigured; the home page answers either way.
  await waitForHttp200(`${url}/${env["GATEWAY_API_KEY"] ? "api/health" : ""}`, 30_000, p);
  return { url, p };
}

let nats: NatsServer;
let backend: ModelBackend;
let keysDir: string;
const gateway: { api?: GatewayProcess; worker?: GatewayProcess; url?: string } = {};
let web: { url: string; p: GatewayProcess } | undefined;
let browser: Browser;
let context: BrowserContext;
/** Every response the browser received, and those that held the gateway key. */
const seen = { responses: 0, leaks: [] as string[] };

beforeAll(async () => {
  const started = Date.now();
  const chromiumPath = chromiumBinary();
  mkdirSync(OUT, { recursive: true });
  const built = buildWeb();
  nats = await startNatsServer();
  backend = await new ModelBackend().start();
  keysDir = mkdtempSync(join(tmpdir(), "web-e2e-keys-"));
  const keysFile = join(keysDir, "keys.json");
  writeFileSync(
    keysFile,
    JSON.stringify({
      keys: [
        {
          name: "web",
          sha256: createHash("sha256").update(KEY).digest("hex"),
          rate_limit: { rps: 100, burst: 200 },
        },
      ],
    }),
  );
  const [apiPort, apiOps, workerOps] = [await freePort(), await freePort(), await freePort()];
  const common = { NATS_URL: nats.url, BACKEND_URL: backend.url, HOST: "127.0.0.1", LOG_LEVEL: "warn" };
  gateway.api = spawnGateway(["--role", "api"], {
    ...common,
    API_KEYS_FILE: keysFile,
    PORT: String(apiPort),
    METRICS_PORT: String(apiOps),
    MODELS: MODELS.join(","),
  });
  gateway.worker = spawnGateway(["--role", "worker"], {
    ...common,
    METRICS_PORT: String(workerOps),
    WORKER_MAX_ATTEMPTS: "2",
    WORKER_BACKOFF_BASE_MS: "100",
    WORKER_BACKOFF_MAX_MS: "200",
  });
  gateway.url = `http://127.0.0.1:${apiPort}`;
  await Promise.all([
    waitForHttp200(`http://127.0.0.1:${apiOps}/readyz`, 30_000, gateway.api),
    waitForHttp200(`http://127.0.0.1:${workerOps}/readyz`, 30_000, gateway.worker),
    built,
  ]);
  // GATEWAY_MODELS names another model: only used if the gateway's list could not be loaded, it must
  // not reach the picker.
  web = await startWeb({ GATEWAY_URL: gateway.url, GATEWAY_API_KEY: KEY, GATEWAY_MODELS: "configured-only" });
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  context = await browser.newContext({ viewport: { width: 1000, height: 760 } });
  context.on("response", (r) => {
    seen.responses++;
    r.text().then(
      (body) => {
        if (body.includes(KEY)) seen.leaks.push(r.url());
      },
      () => undefined, // bodies of redirects and aborted requests are unavailable
    );
  });
  console.log(`web e2e: set-up (build, nats, gateway, server, browser) took ${seconds(started)} s`);
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await stop(web?.p);
  await Promise.all([stop(gateway.api), stop(gateway.worker)]);
  await backend?.close();
  await nats?.dispose();
  if (keysDir) rmSync(keysDir, { recursive: true, force: true });
});

async function openPage(path: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${web!.url}${path}`);
  return page;
}

const shot = (page: Page, name: string) =>
  page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });

const assistantText = (page: Page) => page.getByTestId("message-assistant").last().locator("p").innerText();

/** The backend's call for this prompt, once the gateway has made it. */
const callFor = (prompt: string): Promise<ModelCall> => backend.waitForCall((c) => c.prompt === prompt);

describe("chat", () => {
  it("shows the first tokens while the model is still streaming, then the whole answer", async () => {
    const page = await openPage("/");
    // The picker is the gateway's GET /v1/models (its MODELS), not GATEWAY_MODELS, and needs no notice.
    expect(await page.getByTestId("model").locator("option").allInnerTexts()).toEqual(MODELS);
    expect(await page.getByTestId("models-notice").count()).toBe(0);
    expect(await page.getByTestId("model").inputValue()).toBe("slow-echo");

    const prompt = "Hello from the browser";
    const answer = ModelBackend.answerFor(prompt);
    await page.getByLabel("Prompt", { exact: true }).fill(prompt);
    await page.getByRole("button", { name: "Send" }).click();

    await page.getByTestId("message-assistant").getByText("Streaming reply").waitFor();
    const call = await callFor(prompt);
    const partial = await assistantText(page);
    // Tokens are on the page while the backend has not finished writing the answer.
    expect(call.finished).toBe(false);
    expect(call.written).toBeLessThan(ModelBackend.tokensFor(prompt).length);
    expect(answer.startsWith(partial)).toBe(true);
    expect(partial.length).toBeLessThan(answer.length);
    await shot(page, "chat-streaming");

    // The stream is over when the message stops being the streaming one (useChat saw the finish).
    await page.locator('[data-testid="message-assistant"][data-streaming="false"]').waitFor();
    expect(await assistantText(page)).toBe(answer);
    expect(call.finished).toBe(true);
    expect(await page.getByTestId("chat-error").count()).toBe(0);
    await shot(page, "chat");
    await page.close();
  });

  it("a backend error shows a message, and the next turn works", async () => {
    const page = await openPage("/");
    await page.getByTestId("model").selectOption("fail-500");
    await page.getByLabel("Prompt", { exact: true }).fill("Break, please");
    await page.getByRole("button", { name: "Send" }).click();
    const alert = page.getByTestId("chat-error");
    await alert.waitFor();
    expect(await alert.innerText()).toBe("The model backend failed (gateway 500): the model crashed.");
    await shot(page, "chat-error");

    await page.getByTestId("model").selectOption("slow-echo");
    await page.getByLabel("Prompt", { exact: true }).fill("And now?");
    await page.getByRole("button", { name: "Send" }).click();
    await page.getByTestId("message-assistant").last().getByText("done.").waitFor();
    expect(await page.getByTestId("chat-error").count()).toBe(0);
    await page.close();
  });

  it("leaving the page mid-answer cancels the model's generation", async () => {
    const page = await openPage("/");
    const prompt = "Start, then I leave";
    await page.getByLabel("Prompt", { exact: true }).fill(prompt);
    await page.getByRole("button", { name: "Send" }).click();
    await page.getByTestId("message-assistant").getByText("Streaming reply").waitFor();
    const call = await callFor(prompt);
    // Client-side navigation: the chat unmounts, its request is aborted, the route's signal fires.
    await page.getByRole("link", { name: "Jobs" }).click();
    await page.getByRole("heading", { name: "Async jobs" }).waitFor();
    const deadline = Date.now() + 5000;
    while (!call.aborted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(call.aborted).toBe(true);
    expect(call.finished).toBe(false);
    await page.close();
  });
});

describe("jobs", () => {
  it("submits a job, shows its id and status, and polls until it succeeds", async () => {
    const page = await openPage("/jobs");
    const prompt = "Summarise the platform in one line";
    await page.getByLabel("Job prompt").fill(prompt);
    await page.getByRole("button", { name: "Submit job" }).click();
    const id = await page.getByTestId("job-id").innerText();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(["queued", "running", "succeeded"]).toContain(await page.getByTestId("job-status").innerText());
    await page.getByTestId("job-status").getByText("succeeded").waitFor({ timeout: 20_000 });
    expect(await page.getByTestId("job-result").innerText()).toBe(`echo: ${prompt}`);
    // The page polled the same job the gateway ran.
    expect((await callFor(prompt)).stream).toBe(false);
    await shot(page, "jobs");
    await page.close();
  });

  it("a job the backend keeps failing ends failed, with the reason shown", async () => {
    const page = await openPage("/jobs");
    await page.getByTestId("model").selectOption("fail-500");
    await page.getByLabel("Job prompt").fill("This one fails");
    await page.getByRole("button", { name: "Submit job" }).click();
    await page.getByTestId("job-status").getByText("failed").waitFor({ timeout: 20_000 });
    expect(await page.getByTestId("job-error").innerText()).toMatch(/500/);
    await shot(page, "jobs-failed");
    await page.close();
  });
});

describe("configuration", () => {
  it("a missing GATEWAY_API_KEY is a page naming it (and a failing /api/health), never a blank page", async () => {
    const bad = await startWeb({ GATEWAY_URL: gateway.url! });
    try {
      const health = await fetch(`${bad.url}/api/health`);
      expect(health.status).toBe(503);
      const page = await context.newPage();
      await page.goto(`${bad.url}/`);
      const panel = page.getByTestId("config-error");
      expect(await panel.innerText()).toMatch(/GATEWAY_API_KEY is not set/);
      await shot(page, "config-error");
      await page.close();
      expect(bad.p.output()).toMatch(/invalid configuration[\s\S]*GATEWAY_API_KEY is not set/);
    } finally {
      await stop(bad.p);
    }
  });

  it("the gateway key never reached the browser", () => {
    expect(seen.responses).toBeGreaterThan(10);
    expect(seen.leaks).toEqual([]);
  });

  it("the server logged no errors: failed turns are one warning line, aborted streams nothing", () => {
    const log = web!.p.output();
    expect(log).toMatch(/web: inference gateway at http:\/\/127\.0\.0\.1:\d+/);
    expect(log).toMatch(/web: chat fail-500: backend_error: /);
    // Next.js prefixes request errors with ⨯; an unclean abort shows up as an AbortError or a reset.
    expect(log).not.toMatch(/⨯|\bError:|ECONNRESET|[Uu]nhandled/);
  });
});
