"use client";

import { useChat } from "@ai-sdk/react";
import { DefaultChatTransport, type UIMessage } from "ai";
import { type FormEvent, useMemo, useState } from "react";
import { type ModelList, errorMessage } from "../lib/api";
import { ModelPicker } from "./model-picker";

const textOf = (m: UIMessage) =>
  m.parts
    .filter((p) => p.type === "text")
    .map((p) => p.text)
    .join("");

/** What to tell the user about a failed turn: the route's own message when it sent one. */
function describe(error: Error): string {
  // useChat's error for a non-2xx answer carries the body (our JSON) and status.
  const e = error as Error & { responseBody?: string; statusCode?: number };
  if (typeof e.responseBody === "string") return errorMessage(e.responseBody, e.statusCode);
  if (error instanceof TypeError) return "Lost the connection to this app's server; try again.";
  return error.message || "Something went wrong.";
}

export function Chat({ list }: { list: ModelList }) {
  const [model, setModel] = useState(list.models[0] ?? "");
  const [input, setInput] = useState("");
  const transport = useMemo(() => new DefaultChatTransport({ api: "/api/chat" }), []);
  // useChat stops its request when the page unmounts (another route, tab closed); the route handler's
  // abort signal then cancels the gateway call, so no model keeps generating for nobody.
  const { messages, sendMessage, status, error, stop, clearError } = useChat({ transport });
  const busy = status === "submitted" || status === "streaming";

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const text = input.trim();
    if (!text || !model || busy) return;
    clearError();
    setInput("");
    void sendMessage({ text }, { body: { model } });
  };

  return (
    <section className="panel">
      <h1>Chat</h1>
      <ModelPicker list={list} value={model} onChange={setModel} />
      <ol className="messages" data-testid="messages" aria-live="polite">
        {messages.map((m, i) => (
          <li
            key={m.id}
            className={m.role}
            data-testid={`message-${m.role}`}
            data-streaming={m.role === "assistant" && i === messages.length - 1 && status === "streaming"}
          >
            <span className="role">{m.role === "user" ? "You" : "Model"}</span>
            <p>{textOf(m)}</p>
          </li>
        ))}
      </ol>
      {error ? (
        <p className="alert" role="alert" data-testid="chat-error">
          {describe(error)}
        </p>
      ) : null}
      <form onSubmit={submit} className="composer">
        <textarea
          aria-label="Prompt"
          value={input}
          onChange={(e) => setInput(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey) submit(e);
          }}
          placeholder="Ask the model something"
          rows={3}
        />
        <div className="actions">
          {busy ? (
            <button type="button" onClick={() => void stop()}>
              Stop
            </button>
          ) : null}
          <button type="submit" disabled={busy || !input.trim() || !model}>
            Send
          </button>
        </div>
      </form>
    </section>
  );
}
