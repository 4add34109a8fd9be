"use client";

// The root layout itself failed: this replaces it, so it brings its own <html>.
export default function GlobalError({ error }: { error: Error & { digest?: string } }) {
  return (
    <html lang="en">
      <body>
        <main role="alert">
          <h1>Something went wrong</h1>
          <p>
            The app failed to render{error.digest ? ` (reference ${error.digest} in the server log)` : ""}.
          </p>
        </main>
      </body>
    </html>
  );
}
