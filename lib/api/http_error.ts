/**
 * The one HTTP error class: a status and a one-line message for the client.
 *
 * @module
 */

/** An error answered to the client as `status` with `message` as plain text. */
export class HttpError extends Error {
  /** The HTTP status code. */
  readonly status: number;
  /** Extra response headers (e.g. `Allow`). */
  readonly headers: Record<string, string>;
  /** Creates the error. */
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.headers = headers;
  }
}
