"use client";

import { type FormEvent, useEffect, useState } from "react";
import {
  type ApiErrorBody,
  type JobView,
  type ModelList,
  TERMINAL_STATUSES,
  errorMessage,
} from "../../lib/api";
import { ModelPicker } from "../model-picker";

/**
 * Polling starts fast (jobs on an idle queue finish in about a second) and backs off: every open page
 * polls with the app's one gateway key, whose rate limit all users share.
 */
const FIRST_POLL_MS = 500;
const MAX_POLL_MS = 3000;

/** A key per submission: a retried POST whose answer was lost gets the same job, never a second one. */
function idempotencyKey(): string {
  // getRandomValues, not randomUUID: the latter needs a secure context, and in-cluster http is not one.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const retryAfterMs = (text: string): number | undefined => {
  try {
    const s = (JSON.parse(text) as Partial<ApiErrorBody>).error?.retryAfterSeconds;
    return typeof s === "number" ? s * 1000 : undefined;
  } catch {
    return undefined;
  }
};

export function Jobs({ list }: { list: ModelList }) {
  const [model, setModel] = useState(list.models[0] ?? "");
  const [prompt, setPrompt] = useState("");
  const [submitting, setSubmitting] = useState(false);
  const [submitError, setSubmitError] = useState<string | null>(null);
  const [job, setJob] = useState<JobView | null>(null);
  const [pollError, setPollError] = useState<string | null>(null);
  /** The job being polled; null once it is finished (or cannot be found). */
  const [polling, setPolling] = useState<string | null>(null);

  useEffect(() => {
    if (!polling) return;
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let delay = FIRST_POLL_MS;
    const poll = async () => {
      let wait: number | undefined;
      try {
        const res = await fetch(`/api/jobs/${encodeURIComponent(polling)}`, {
          signal: abort.signal,
          cache: "no-store",
        });
        const text = await res.text();
        if (res.ok) {
          const next = JSON.parse(text) as JobView;
          setJob(next);
          setPollError(null);
          if (TERMINAL_STATUSES.includes(next.status)) return setPolling(null);
        } else if (res.status === 404) {
          setPollError(errorMessage(text, res.status));
          return setPolling(null);
        } else {
          setPollError(`${errorMessage(text, res.status)} Still checking…`);
          wait = retryAfterMs(text);
        }
      } catch {
        if (abort.signal.aborted) return;
        setPollError("Lost the connection to this app's server. Still checking…");
      }
      delay = Math.min(MAX_POLL_MS, Math.round(delay * 1.5));
      timer = setTimeout(() => void poll(), Math.max(wait ?? 0, delay));
    };
    timer = setTimeout(() => void poll(), delay);
    // Leaving the page stops polling, the request in flight included.
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [polling]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!prompt.trim() || !model || submitting) return;
    setSubmitting(true);
    setSubmitError(null);
    setPollError(null);
    try {
      const res = await fetch("/api/jobs", {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": idempotencyKey() },
        body: JSON.stringify({ model, prompt }),
      });
      const text = await res.text();
      if (!res.ok) return setSubmitError(errorMessage(text, res.status));
      const created = JSON.parse(text) as JobView;
      setJob(created);
      setPolling(TERMINAL_STATUSES.includes(created.status) ? null : created.id);
    } catch {
      setSubmitError("Lost the connection to this app's server; try again.");
    } finally {
      setSubmitting(false);
    }
  };

  return (
    <section className="panel">
      <h1>Async jobs</h1>
      <p className="hint">
        A job is queued at the gateway and run by its workers; it keeps running if you leave this page.
      </p>
      <ModelPicker list={list} value={model} onChange={setModel} />
      <form onSubmit={(e) => void submit(e)} className="composer">
        <textarea
          aria-label="Job prompt"
          value={prompt}
          onChange={(e) => setPrompt(e.target.value)}
          placeholder="What should the job ask the model?"
          rows={3}
        />
        <div className="actions">
          <button type="submit" disabled={submitting || !prompt.trim() || !model}>
            Submit job
          </button>
        </div>
      </form>
      {submitError ? (
        <p className="alert" role="alert" data-testid="job-submit-error">
          {submitError}
        </p>
      ) : null}
      {job ? (
        <dl className="job" data-testid="job">
          <dt>Job</dt>
          <dd>
            <code data-testid="job-id">{job.id}</code>
          </dd>
          <dt>Status</dt>
          <dd>
            <span className={`status ${job.status}`} data-testid="job-status">
              {job.status}
            </span>
            {job.attempts ? ` (attempt ${job.attempts})` : null}
          </dd>
          {job.lastError && !TERMINAL_STATUSES.includes(job.status) ? (
            <>
              <dt>Retrying after</dt>
              <dd>{job.lastError}</dd>
            </>
          ) : null}
          {job.result ? (
            <>
              <dt>Result</dt>
              <dd>
                <p data-testid="job-result">{job.result.content ?? "(no content)"}</p>
              </dd>
            </>
          ) : null}
          {job.error ? (
            <>
              <dt>Error</dt>
              <dd className="alert" role="alert" data-testid="job-error">
                {job.error.reason}
              </dd>
            </>
          ) : null}
        </dl>
      ) : null}
      {pollError ? (
        <p className="alert" role="alert" data-testid="job-poll-error">
          {pollError}
        </p>
      ) : null}
    </section>
  );
}
