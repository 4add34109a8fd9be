/**
 * Error bodies in OpenAI's shape, `{"error": {"message", "type", "code", "param"}}`, so the official
 * clients map them to their error classes and show the message. `fields` (validation errors) is our
 * extension; clients ignore unknown members.
 */
export interface ApiErrorBody {
  error: {
    message: string;
    type: string;
    code: string;
    param: string | null;
    fields?: { field: string; message: string }[];
  };
}

export function apiError(
  type: string,
  code: string,
  message: string,
  param: string | null = null,
  fields?: { field: string; message: string }[],
): ApiErrorBody {
  return fields === undefined
    ? { error: { message, type, code, param } }
    : { error: { message, type, code, param, fields } };
}

/** Validation failure: `param` names the first bad field, `fields` lists all of them. */
export function validationError(message: string, fields: { field: string; message: string }[]): ApiErrorBody {
  return apiError("invalid_request_error", "validation_failed", message, fields[0]?.field ?? null, fields);
}

/**
 * The raw HTTP answer to a request Node's parser refused before any route ran (Fastify's
 * `clientErrorHandler`): too slow (408), headers too large (431), or malformed (400).
 */
export function clientErrorResponse(errCode: string | undefined): { status: number; body: ApiErrorBody } {
  switch (errCode) {
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return {
        status: 408,
        body: apiError(
          "invalid_request_error",
          "request_timeout",
          "The request (headers and body) did not arrive within the server's time limit",
        ),
      };
    case "HPE_HEADER_OVERFLOW":
      return {
        status: 431,
        body: apiError(
          "invalid_request_error",
          "headers_too_large",
          "The request headers exceed the server's size limit",
        ),
      };
    default:
      return {
        status: 400,
        body: apiError("invalid_request_error", "bad_request", "Malformed HTTP request"),
      };
  }
}

/** The bytes of a complete HTTP/1.1 error response that closes the connection. */
export function rawHttpError(status: number, statusText: string, body: ApiErrorBody): string {
  const json = JSON.stringify(body);
  return (
    `HTTP/1.1 ${status} ${statusText}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`
  );
}
