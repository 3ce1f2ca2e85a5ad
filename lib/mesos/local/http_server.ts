/**
 * The HTTP/1.1 server of the local master and agents. It reads each request
 * off the TCP connection itself, with the limits of the guarded front
 * (`lib/http/guarded_server.ts`: {@linkcode scanRequest} finds where a request
 * ends and refuses an oversize or malformed one with one line: 414, 431,
 * 413, 400, 411; 408 for a request not complete within the request timeout;
 * 429 past the connections allowed per address), hands the whole request to
 * the handler and writes the answer straight back on the connection: one
 * write per answer, and on an event stream one HTTP chunk per event.
 *
 * Why not the guarded front: it relays every request and every answer
 * through a second socket to a `Deno.serve` behind it, so each Mesos message
 * (a status update crosses the cluster's servers several times) cost two
 * more socket hops, an HTTP parse and a stream pump; most of the local
 * cluster's CPU during a create went there.
 *
 * @module
 */
import { concat, writeAll } from "../../bytes.ts";
import { acceptConnections, ConnectionsPerClient } from "../../http/accept.ts";
import { DEFAULT_LIMITS, type RequestLimits, scanRequest } from "../../http/request_head.ts";
import { refusal } from "../../http/guarded_server.ts";

/** The request headers, looked up case-insensitively (repeated ones joined with `, `). */
export class RequestHeaders {
  readonly #map: Map<string, string>;

  /** Headers from lower-cased names. */
  constructor(map: Map<string, string> = new Map()) {
    this.#map = map;
  }

  /** The value of `name`, or `null`. */
  get(name: string): string | null {
    return this.#map.get(name.toLowerCase()) ?? null;
  }

  /** True when the request has `name`. */
  has(name: string): boolean {
    return this.#map.has(name.toLowerCase());
  }
}

/** One whole request as the server read it. */
export interface LocalRequest {
  /** `POST`, `GET`, ... */
  readonly method: string;
  /** The target's path, as sent (percent-encoding kept). */
  readonly path: string;
  /** The target's query with its `?`, or `""`. */
  readonly search: string;
  /** The headers. */
  readonly headers: RequestHeaders;
  /** The body (a chunked one already joined). */
  readonly body: Uint8Array;
}

/** Where a stream answer's events go (given by the server to {@linkcode StreamBody.attach}). */
export interface StreamSink {
  /** Sends one event as one HTTP chunk. */
  write(bytes: Uint8Array): void;
  /** Ends the answer after what was written (last chunk, then the connection closes). */
  end(): void;
  /**
   * Closes the connection after what was written, without the last chunk:
   * the client sees the answer break, as when a Mesos process dies.
   */
  destroy(): void;
}

/** The body of a stream answer (an event stream). */
export interface StreamBody {
  /** The server starts sending: everything written goes to `sink` from now on. */
  attach(sink: StreamSink): void;
  /** The client went away (or the server stopped) before the stream ended. */
  abort(): void;
}

/** An answer: a whole body, or a stream sent chunked until it ends. */
export interface LocalResponse {
  /** The status code. */
  status: number;
  /** Extra headers (Content-Length and Transfer-Encoding are the server's). */
  headers?: Record<string, string>;
  /** A whole body. */
  body?: string | Uint8Array;
  /** A stream body (chunked); `body` is then ignored. */
  stream?: StreamBody;
}

/** Options of {@linkcode serveLocal}. */
export interface LocalServeOptions {
  /** Address to listen on. */
  hostname: string;
  /** Port (0: any free port). */
  port: number;
  /** Request size limits (default {@linkcode DEFAULT_LIMITS}). */
  limits?: Partial<RequestLimits>;
  /** How long one request may take to arrive, from its first byte, ms (default 10000). */
  requestTimeoutMs?: number;
  /** Most open connections from one client address (default 64). */
  maxConnectionsPerClient?: number;
  /** Answers a handler that threw (default: a plain 500). */
  onError?: (error: unknown) => LocalResponse;
}

/** A running {@linkcode serveLocal} server. */
export interface LocalServer {
  /** The address it listens on (the real port when 0 was asked). */
  readonly addr: Deno.NetAddr;
  /** Stops accepting and closes every connection (open streams are aborted). */
  shutdown(): Promise<void>;
}

const REASONS: Record<number, string> = {
  100: "Continue",
  200: "OK",
  202: "Accepted",
  307: "Temporary Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
};

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");
const CONTINUE = encoder.encode("HTTP/1.1 100 Continue\r\n\r\n");
const LAST_CHUNK = encoder.encode("0\r\n\r\n");
const CRLF = encoder.encode("\r\n");
/** Paths that need no URL parsing to be read as sent. */
const PLAIN_PATH = /^\/[A-Za-z0-9_()\-/]*$/;

function headText(status: number, headers: Record<string, string> | undefined): string {
  let text = `HTTP/1.1 ${status} ${REASONS[status] ?? "Unknown"}\r\n`;
  if (headers) {
    for (const name in headers) text += `${name}: ${headers[name]}\r\n`;
  }
  return text;
}

/** The bytes of a whole answer (head and body in one buffer, for one write). */
export function serializeResponse(
  response: LocalResponse,
  withBody: boolean,
  keepAlive: boolean,
): Uint8Array {
  const body = typeof response.body === "string"
    ? encoder.encode(response.body)
    : response.body ?? new Uint8Array();
  const head = encoder.encode(
    `${headText(response.status, response.headers)}content-length: ${body.length}\r\n${
      keepAlive ? "" : "connection: close\r\n"
    }\r\n`,
  );
  if (!withBody || body.length === 0) return head;
  const out = new Uint8Array(head.length + body.length);
  out.set(head, 0);
  out.set(body, head.length);
  return out;
}

/** One connection: the stream answer it carries, and whether that stream ended. */
interface ConnState {
  stream?: StreamBody;
  ended: boolean;
}

/** A request read from `buf[start, end)` (a whole one, as {@linkcode scanRequest} found it). */
interface Parsed {
  request: LocalRequest;
  keepAlive: boolean;
}

/**
 * Reads the request at the start of `buf` (`end` bytes, the request line
 * ending at `lineEnd`), or returns the one-line reason it is malformed.
 */
export function parseRequest(buf: Uint8Array, end: number, lineEnd: number): Parsed | string {
  let start = 0;
  while (buf[start] === 13 && buf[start + 1] === 10) start += 2;
  const line = latin1.decode(buf.subarray(start, lineEnd));
  const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/1\.([01])$/.exec(line);
  if (!m) return "The request line is not valid HTTP/1.1";
  const [, method, target, minor] = m as unknown as [string, string, string, string];
  let headEnd = lineEnd;
  while (
    !(buf[headEnd] === 13 && buf[headEnd + 1] === 10 && buf[headEnd + 2] === 13 &&
      buf[headEnd + 3] === 10)
  ) headEnd++;
  const map = new Map<string, string>();
  if (headEnd > lineEnd) {
    for (const raw of latin1.decode(buf.subarray(lineEnd + 2, headEnd)).split("\r\n")) {
      const colon = raw.indexOf(":");
      if (colon <= 0) return "A request header line has no name";
      const name = raw.slice(0, colon).trim().toLowerCase();
      const value = raw.slice(colon + 1).trim();
      const had = map.get(name);
      map.set(name, had === undefined ? value : `${had}, ${value}`);
    }
  }
  const bodyStart = headEnd + 4;
  const body = map.get("transfer-encoding")?.toLowerCase() === "chunked"
    ? dechunk(buf, bodyStart, end)
    : buf.slice(bodyStart, end);
  let path: string;
  let search = "";
  const q = target.indexOf("?");
  const rawPath = q < 0 ? target : target.slice(0, q);
  if (PLAIN_PATH.test(rawPath) && !rawPath.includes("/.") && !rawPath.includes("//")) {
    path = rawPath;
    if (q >= 0) search = target.slice(q);
  } else {
    let url: URL;
    try {
      url = new URL(target, "http://localhost");
    } catch {
      return "The request target is not valid";
    }
    path = url.pathname;
    search = url.search;
  }
  const connection = map.get("connection")?.toLowerCase() ?? "";
  const keepAlive = minor === "1"
    ? !/(^|,)\s*close\s*(,|$)/.test(connection)
    : /(^|,)\s*keep-alive\s*(,|$)/.test(connection);
  return {
    request: { method, path, search, headers: new RequestHeaders(map), body },
    keepAlive,
  };
}

/** Joins the data of a chunked body in `buf[start, end)` (framing already checked). */
function dechunk(buf: Uint8Array, start: number, end: number): Uint8Array {
  const parts: Uint8Array[] = [];
  let at = start;
  while (at < end) {
    let lineEnd = at;
    while (!(buf[lineEnd] === 13 && buf[lineEnd + 1] === 10)) lineEnd++;
    const size = parseInt(latin1.decode(buf.subarray(at, lineEnd)).split(";")[0]!.trim(), 16);
    if (!(size > 0)) break;
    parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return parts.length === 0 ? new Uint8Array() : concat(parts).slice();
}

/** True once the head of an incomplete request asks for `100 Continue`. */
function expectsContinue(buf: Uint8Array, len: number): boolean {
  for (let i = 0; i + 3 < len; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) {
      return /\r\nexpect:[ \t]*100-continue[ \t]*\r\n/i.test(
        latin1.decode(buf.subarray(0, i + 2)),
      );
    }
  }
  return false;
}

/**
 * Starts serving `handler` on `options.hostname:options.port`. Throws what
 * `Deno.listen` throws (e.g. `Deno.errors.AddrInUse`).
 */
export function serveLocal(
  options: LocalServeOptions,
  handler: (request: LocalRequest) => LocalResponse | Promise<LocalResponse>,
): LocalServer {
  const limits: RequestLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const maxPerClient = options.maxConnectionsPerClient ?? 64;
  const onError = options.onError ??
    (() => ({ status: 500, body: "Internal Server Error" }));
  const listener = Deno.listen({ hostname: options.hostname, port: options.port });
  const addr = listener.addr as Deno.NetAddr;
  const perClient = new ConnectionsPerClient();
  /** Open connections, with the stream each one carries (if any) and whether it ended. */
  const open = new Map<Deno.Conn, ConnState>();
  let closing = false;

  async function respond(request: LocalRequest): Promise<LocalResponse> {
    try {
      return await handler(request);
    } catch (error) {
      return onError(error);
    }
  }

  /** Starts a stream answer on `conn`: its head, then one chunk per event, coalesced per write. */
  function startStream(conn: Deno.Conn, state: ConnState, response: LocalResponse): void {
    const stream = state.stream!;
    const queue: Uint8Array[] = [
      encoder.encode(
        `${headText(response.status, response.headers)}transfer-encoding: chunked\r\n\r\n`,
      ),
    ];
    /** A pump is scheduled or running. */
    let writing = false;
    let ending = false;
    let dead = false;
    let breaking = false;
    const pump = async () => {
      try {
        while (queue.length > 0) {
          const bytes = concat(queue.splice(0));
          await writeAll(conn, bytes);
        }
        if (ending || breaking) {
          dead = true;
          conn.close();
        }
      } catch {
        dead = true;
        try {
          conn.close();
        } catch { /* closed */ }
      } finally {
        writing = false;
      }
    };
    // Writes start after the current job (a microtask later), so the events
    // the handlers of one turn send to this stream leave in one write.
    const kick = () => {
      if (writing) return;
      writing = true;
      queueMicrotask(pump);
    };
    const sink: StreamSink = {
      write(bytes) {
        if (dead || ending) return;
        queue.push(encoder.encode(bytes.length.toString(16) + "\r\n"), bytes, CRLF);
        kick();
      },
      end() {
        if (dead || ending) return;
        ending = true;
        state.ended = true;
        queue.push(LAST_CHUNK);
        kick();
      },
      destroy() {
        if (dead || ending) return;
        ending = true;
        breaking = true;
        state.ended = true;
        kick();
      },
    };
    stream.attach(sink);
    kick();
  }

  async function serveConn(conn: Deno.Conn): Promise<void> {
    const ip = (conn.remoteAddr as Deno.NetAddr).hostname;
    const count = perClient.open(ip);
    const state: ConnState = { ended: false };
    open.set(conn, state);
    let requestTimer: ReturnType<typeof setTimeout> | undefined;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      clearTimeout(requestTimer);
      try {
        conn.close();
      } catch { /* closed */ }
    };
    const refuse = async (status: number, message: string) => {
      if (ended) return;
      try {
        await writeAll(conn, refusal(status, message));
      } catch { /* the client left */ }
      end();
    };
    try {
      if (count > maxPerClient) {
        await refuse(429, `Too many connections from ${ip}: at most ${maxPerClient} at a time`);
        return;
      }
      let buf = new Uint8Array(8 * 1024);
      let len = 0;
      let continued = false;
      for (;;) {
        while (len > 0 && !state.stream) {
          const found = scanRequest(buf, len, limits);
          if (found.kind === "more") break;
          if (found.kind === "error") return await refuse(found.status, found.message);
          clearTimeout(requestTimer);
          requestTimer = undefined;
          continued = false;
          const parsed = parseRequest(buf, found.end, found.lineEnd);
          if (typeof parsed === "string") return await refuse(400, parsed);
          buf.copyWithin(0, found.end, len);
          len -= found.end;
          const response = await respond(parsed.request);
          if (ended) return;
          if (response.stream) {
            state.stream = response.stream;
            startStream(conn, state, response);
            break;
          }
          const keepAlive = parsed.keepAlive && !closing;
          await writeAll(
            conn,
            serializeResponse(response, parsed.request.method !== "HEAD", keepAlive),
          );
          if (!keepAlive) return;
        }
        if (!state.stream && len > 0) {
          if (requestTimer === undefined) {
            requestTimer = setTimeout(() => {
              refuse(408, `The request did not arrive in full within ${requestTimeoutMs / 1000} s`);
            }, requestTimeoutMs);
          }
          if (!continued && expectsContinue(buf, len)) {
            continued = true;
            await writeAll(conn, CONTINUE);
          }
        }
        if (len === buf.length) {
          const bigger = new Uint8Array(buf.length * 2);
          bigger.set(buf);
          buf = bigger;
        }
        const n = await conn.read(buf.subarray(len));
        if (n === null) break;
        // A streaming connection carries nothing more from the client: ignore it.
        if (!state.stream) len += n;
      }
    } catch {
      // A reset or a close from either side: nothing to answer.
    } finally {
      end();
      open.delete(conn);
      if (!state.ended) state.stream?.abort();
      perClient.close(ip);
    }
  }

  const accepting = acceptConnections(listener, () => closing, serveConn);

  return {
    addr,
    async shutdown() {
      if (closing) return;
      closing = true;
      try {
        listener.close();
      } catch { /* closed */ }
      await accepting;
      for (const [conn, state] of open) {
        try {
          conn.close();
        } catch { /* closed */ }
        if (!state.ended) state.stream?.abort();
      }
      open.clear();
    },
  };
}
