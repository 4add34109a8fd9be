"use client";

// Anything a page throws lands here instead of a blank screen.
export default function PageError({
  error,
  reset,
}: {
  error: Error & { digest?: string };
  reset: () => void;
}) {
  return (
    <section className="panel error" role="alert">
      <h1>Something went wrong</h1>
      <p>The page failed to render{error.digest ? ` (reference ${error.digest} in the server log)` : ""}.</p>
      <button type="button" onClick={reset}>
        Try again
      </button>
    </section>
  );
}
