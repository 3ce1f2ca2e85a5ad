/**
 * An HTTP server with the limits `Deno.serve` lacks: a front that accepts the
 * TCP (or TLS) connections itself, reads each request off the wire with
 * {@linkcode scanRequest}, and answers on its own, with one line, when a
 * request is too big or too slow:
 *
 * | condition | answer |
 * |---|---|
 * | request line over 8 KiB | 414 |
 * | header lines over 16 KiB | 431 |
 * | body over 1 MiB | 413 |
 * | a request not complete 10 s after its first byte | 408 |
 * | more open connections from one address than allowed | 429 |
 * | bad framing (Content-Length, chunks) | 400, 411 |
 *
 * Whole requests are handed to a `Deno.serve` listening on a Unix socket in a
 * private (0700) directory, over one socket per client connection; its
 * answers flow back unchanged. The handler gets the client's address and
 * the scheme in {@linkcode GuardedInfo}.
 *
 * @module
 */
import { writeAll } from "../bytes.ts";
import { acceptConnections, ConnectionsPerClient } from "./accept.ts";
import { DEFAULT_LIMITS, type RequestLimits, scanRequest } from "./request_head.ts";

/** Options of {@linkcode serveGuarded}. */
export interface GuardedServeOptions {
  /** Address to listen on. Default `127.0.0.1`. */
  hostname?: string;
  /** Port to listen on (0: any free port). */
  port: number;
  /** PEM certificate chain: serve HTTPS (with `key`). */
  cert?: string;
  /** PEM private key for `cert`. */
  key?: string;
  /** Request size limits (default {@linkcode DEFAULT_LIMITS}). */
  limits?: Partial<RequestLimits>;
  /** How long one request may take to arrive, from its first byte, ms. Default 10000. */
  requestTimeoutMs?: number;
  /**
   * A connection with no byte either way for this long is closed, ms (0: never;
   * for servers that hold long silent streams). Default 0.
   */
  idleTimeoutMs?: number;
  /** Most open connections from one client address. Default 64. */
  maxConnectionsPerClient?: number;
  /** Answers a handler that threw (default: a plain 500). */
  onError?: (error: unknown) => Response | Promise<Response>;
}

/**
 * What the handler gets besides the request. The request is the inner
 * server's: its URL reads `http+unix://{Host}/{path}` (the path and query as
 * the client sent them; making a copy with the outer URL would cost more
 * than the rest of the front), so a handler that needs the origin builds it
 * from `scheme` and the `Host` header.
 */
export interface GuardedInfo {
  /** The client's address. */
  remoteAddr: Deno.NetAddr;
  /** `https` when the server has a certificate, else `http`. */
  scheme: "http" | "https";
}

/** A running {@linkcode serveGuarded} server. */
export interface GuardedServer {
  /** The address it listens on (the real port when 0 was asked). */
  readonly addr: Deno.NetAddr;
  /** Stops accepting, closes every connection and the inner server. */
  shutdown(): Promise<void>;
}

const REASONS: Record<number, string> = {
  400: "Bad Request",
  408: "Request Timeout",
  411: "Length Required",
  413: "Content Too Large",
  414: "URI Too Long",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
};

const encoder = new TextEncoder();

/** The raw bytes of a one-line plain-text answer that closes the connection. */
export function refusal(status: number, message: string): Uint8Array {
  const body = encoder.encode(`${message}\n`);
  return encoder.encode(
    `HTTP/1.1 ${status} ${
      REASONS[status] ?? "Error"
    }\r\ncontent-type: text/plain; charset=utf-8\r\n` +
      `content-length: ${body.length}\r\nconnection: close\r\n\r\n${message}\n`,
  );
}

/** The header that carries the client's address from the front to the inner server. */
const CLIENT_HEADER = "x-mrr-front-client";

/**
 * Starts the server. Throws what `Deno.listen` throws (e.g.
 * `Deno.errors.AddrInUse`) when the address cannot be taken.
 */
export async function serveGuarded(
  options: GuardedServeOptions,
  handler: (req: Request, info: GuardedInfo) => Response | Promise<Response>,
): Promise<GuardedServer> {
  const limits: RequestLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 0;
  const maxPerClient = options.maxConnectionsPerClient ?? 64;
  const hostname = options.hostname ?? "127.0.0.1";
  const tls = options.cert !== undefined && options.key !== undefined;
  const scheme: "http" | "https" = tls ? "https" : "http";
  const listener: Deno.Listener = tls
    ? Deno.listenTls({ hostname, port: options.port, cert: options.cert!, key: options.key! })
    : Deno.listen({ hostname, port: options.port });
  const addr = listener.addr as Deno.NetAddr;

  const dir = await Deno.makeTempDir({ prefix: "mrr-http-" });
  await Deno.chmod(dir, 0o700);
  const socket = `${dir}/http.sock`;
  const inner = Deno.serve({
    path: socket,
    onListen: () => {},
    onError: options.onError ??
      (() => new Response("Internal Server Error\n", { status: 500 })),
  }, (request) => {
    const client = request.headers.get(CLIENT_HEADER) ?? "";
    const comma = client.indexOf(",");
    const [ip, port] = splitAddress(comma < 0 ? client : client.slice(0, comma));
    return handler(request, { remoteAddr: { transport: "tcp", hostname: ip, port }, scheme });
  });

  const perClient = new ConnectionsPerClient();
  const open = new Set<Deno.Conn>();
  let closing = false;

  async function serveConn(conn: Deno.Conn): Promise<void> {
    const remote = conn.remoteAddr as Deno.NetAddr;
    const ip = remote.hostname;
    const count = perClient.open(ip);
    open.add(conn);
    let innerConn: Deno.Conn | undefined;
    let requestTimer: ReturnType<typeof setTimeout> | undefined;
    let idleTimer: ReturnType<typeof setTimeout> | undefined;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      clearTimeout(requestTimer);
      clearTimeout(idleTimer);
      try {
        conn.close();
      } catch { /* closed */ }
      try {
        innerConn?.close();
      } catch { /* closed */ }
    };
    const refuse = async (status: number, message: string) => {
      if (ended) return;
      try {
        await writeAll(conn, refusal(status, message));
      } catch { /* the client left */ }
      end();
    };
    const touch = () => {
      if (idleTimeoutMs <= 0 || ended) return;
      clearTimeout(idleTimer);
      idleTimer = setTimeout(end, idleTimeoutMs);
    };
    try {
      if (count > maxPerClient) {
        await refuse(
          429,
          `Too many connections from ${ip}: at most ${maxPerClient} at a time`,
        );
        return;
      }
      touch();
      innerConn = await Deno.connect({ transport: "unix", path: socket });
      const innerSide = innerConn;
      // Answers flow back as they come.
      (async () => {
        const buf = new Uint8Array(64 * 1024);
        for (;;) {
          const n = await innerSide.read(buf);
          if (n === null) break;
          touch();
          await writeAll(conn, buf.subarray(0, n));
        }
      })().catch(() => {}).finally(end);

      const clientHeader = encoder.encode(`${CLIENT_HEADER}: ${ip}:${remote.port}\r\n`);
      let buf = new Uint8Array(16 * 1024);
      let len = 0;
      for (;;) {
        while (len > 0) {
          const found = scanRequest(buf, len, limits);
          if (found.kind === "more") break;
          if (found.kind === "error") return await refuse(found.status, found.message);
          clearTimeout(requestTimer);
          requestTimer = undefined;
          const cut = found.lineEnd + 2;
          const out = new Uint8Array(found.end + clientHeader.length);
          out.set(buf.subarray(0, cut), 0);
          out.set(clientHeader, cut);
          out.set(buf.subarray(cut, found.end), cut + clientHeader.length);
          await writeAll(innerSide, out);
          buf.copyWithin(0, found.end, len);
          len -= found.end;
        }
        if (len > 0 && requestTimer === undefined) {
          requestTimer = setTimeout(() => {
            refuse(
              408,
              `The request did not arrive in full within ${requestTimeoutMs / 1000} s`,
            );
          }, requestTimeoutMs);
        }
        if (len === buf.length) {
          const bigger = new Uint8Array(buf.length * 2);
          bigger.set(buf);
          buf = bigger;
        }
        const n = await conn.read(buf.subarray(len));
        if (n === null) break;
        touch();
        len += n;
      }
    } catch {
      // A reset, a TLS failure or a close from the other side: nothing to answer.
    } finally {
      end();
      open.delete(conn);
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
      for (const conn of open) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
      await inner.shutdown();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

function splitAddress(text: string): [string, number] {
  const colon = text.lastIndexOf(":");
  if (colon < 0) return [text, 0];
  return [text.slice(0, colon).replace(/^\[|\]$/g, ""), Number(text.slice(colon + 1)) || 0];
}
