import type { Metadata } from "next";
import Link from "next/link";
import type { ReactNode } from "react";
import { readConfig } from "../lib/config";
import "./globals.css";

// The configuration check below must see the runtime environment, not the build machine's.
export const dynamic = "force-dynamic";

export const metadata: Metadata = {
  title: "AI platform",
  description: "Chat with the platform's models and run async jobs through its inference gateway.",
};

export default function RootLayout({ children }: { children: ReactNode }) {
  const cfg = readConfig();
  return (
    <html lang="en">
      <body>
        <header className="top">
          <strong>AI platform</strong>
          <nav>
            <Link href="/">Chat</Link>
            <Link href="/jobs">Jobs</Link>
          </nav>
        </header>
        <main>
          {cfg.ok ? (
            children
          ) : (
            <section className="panel error" role="alert" data-testid="config-error">
              <h1>This app is misconfigured</h1>
              <p>Its operator must fix these environment variables and restart it:</p>
              <ul>
                {cfg.problems.map((p) => (
                  <li key={p.variable + p.message}>
                    <code>{p.variable}</code>: {p.message}
                  </li>
                ))}
              </ul>
            </section>
          )}
        </main>
      </body>
    </html>
  );
}
