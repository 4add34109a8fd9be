import path from "node:path";
import type { NextConfig } from "next";

// npm workspaces hoist dependencies to the repository root: tracing and Turbopack must see it.
const root = path.join(__dirname, "..");

const config: NextConfig = {
  // A self-contained server (.next/standalone) for the container image: no npm, no full node_modules.
  output: "standalone",
  outputFileTracingRoot: root,
  turbopack: { root },
  // The app serves no images: no /_next/image optimizer, so sharp and its 20 MB of libvips stay out.
  images: { unoptimized: true },
  outputFileTracingExcludes: { "*": ["../node_modules/sharp/**", "../node_modules/@img/**"] },
  poweredByHeader: false,
  reactStrictMode: true,
};

export default config;
