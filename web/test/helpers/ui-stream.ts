/** Reading an AI SDK UI message stream (SSE of JSON chunks) as the browser's useChat does. */

export interface UiChunk {
  readonly type: string;
  readonly delta?: string;
  readonly errorText?: string;
}

/** The chunks of a UI message stream response, as they arrive. */
export async function* uiChunks(res: Response): AsyncGenerator<UiChunk> {
  if (!res.body) throw new Error("response has no body");
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const bytes of res.body) {
    buffer += decoder.decode(bytes as Uint8Array, { stream: true });
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice("data: ".length);
        if (data !== "[DONE]") yield JSON.parse(data) as UiChunk;
      }
    }
  }
}

/** The whole stream: the answer's text and the error texts it carried. */
export async function readUiStream(
  res: Response,
): Promise<{ text: string; errors: string[]; types: string[] }> {
  let text = "";
  const errors: string[] = [];
  const types: string[] = [];
  for await (const c of uiChunks(res)) {
    types.push(c.type);
    if (c.type === "text-delta") text += c.delta ?? "";
    if (c.type === "error") errors.push(c.errorText ?? "");
  }
  return { text, errors, types };
}
