/**
 * A small HTTP/1.1 client over plain TCP for the executor's calls to its
 * agent: POST with a body, answers framed by `Content-Length`, chunked
 * transfer coding or the end of the connection, keep-alive connections
 * reused one request at a time, and a streaming body for the SUBSCRIBE
 * event stream.
 *
 * Why not `fetch`: every call through it builds a `Request`, headers
 * objects, abort signals and web streams for both bodies, and loading it
 * costs the executor's start-up too. The executor makes two or three calls
 * per redis task it starts (updates, stats messages), on the same event
 * loop that spawns and watches the redis-servers, so that overhead is CPU
 * taken from them. No TLS, proxies, redirects or compression: the agent
 * endpoint is a plain `ip:port`.
 *
 * @module
 */

/** Thrown when the connection fails or the answer is not valid HTTP/1.1. */
export class Http1Error extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "Http1Error";
  }
}

/** An answer with its whole body. */
export interface Http1Response {
  /** Status code. */
  status: number;
  /** Header fields, names lower-cased (repeated fields joined with `, `). */
  headers: Map<string, string>;
  /** The body (decoded from chunks when chunked). */
  body: Uint8Array;
}

/** An answer whose body is read as it arrives. */
export interface Http1Stream {
  /** Status code. */
  status: number;
  /** Header fields, names lower-cased. */
  headers: Map<string, string>;
  /** The body's bytes as they arrive; ends with the body, throws when the connection fails. */
  body: AsyncIterable<Uint8Array>;
  /** Closes the connection (ends `body`). */
  close(): void;
}

/** Options of {@linkcode Http1Client}. */
export interface Http1ClientOptions {
  /** Idle keep-alive connections kept for reuse. Default 4. */
  maxIdle?: number;
  /**
   * Requests (not streams) on the wire at once; more wait, in order, for one
   * to end, so that a burst reuses the kept connections instead of opening
   * one connection each. Default: no limit.
   */
  maxRequests?: number;
  /** Largest answer head accepted, bytes. Default 64 KiB. */
  maxHeadBytes?: number;
}

const CRLF2 = [13, 10, 13, 10];
const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");

function indexOfSequence(buf: Uint8Array, from: number, end: number, seq: number[]): number {
  outer: for (let i = from; i + seq.length <= end; i++) {
    for (let j = 0; j < seq.length; j++) if (buf[i + j] !== seq[j]) continue outer;
    return i;
  }
  return -1;
}

/** `host:port` (also `[v6]:port`) split for `Deno.connect`; throws naming a bad endpoint. */
export function parseEndpoint(endpoint: string): { hostname: string; port: number } {
  const match = endpoint.match(/^(?:\[([^\]]+)\]|([^:\[\]]+)):(\d{1,5})$/);
  const port = Number(match?.[3]);
  if (!match || !(port > 0 && port < 65536)) {
    throw new TypeError(`Invalid endpoint "${endpoint}": expected host:port`);
  }
  return { hostname: match[1] ?? match[2]!, port };
}

/** One TCP connection with a read buffer. */
class Connection {
  readonly #conn: Deno.TcpConn;
  #buf = new Uint8Array(16 * 1024);
  #start = 0;
  #end = 0;
  #closed = false;
  /** Bytes of the current answer seen so far (0: the server said nothing yet). */
  received = 0;

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }

  async write(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.length;) at += await this.#conn.write(bytes.subarray(at));
  }

  /** Reads more bytes into the buffer; false at the end of the connection. */
  async #fill(): Promise<boolean> {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#end === this.#buf.length) {
      const live = this.#end - this.#start;
      if (this.#start > 0 && live < this.#buf.length / 2) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        const next = new Uint8Array(this.#buf.length * 2);
        next.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = next;
      }
      this.#start = 0;
      this.#end = live;
    }
    const n = await this.#conn.read(this.#buf.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    this.received += n;
    return true;
  }

  /** Reads up to the end of the head (`\r\n\r\n`) and returns it as text, without it. */
  async readHead(maxBytes: number): Promise<string> {
    // Bytes after #start already searched (#fill may move the buffer).
    let searched = 0;
    for (;;) {
      const from = this.#start + Math.max(0, searched - 3);
      const at = indexOfSequence(this.#buf, from, this.#end, CRLF2);
      if (at !== -1) {
        const head = latin1.decode(this.#buf.subarray(this.#start, at));
        this.#start = at + 4;
        return head;
      }
      searched = this.#end - this.#start;
      if (this.#end - this.#start > maxBytes) {
        throw new Http1Error(`Answer head longer than ${maxBytes} bytes`);
      }
      if (!(await this.#fill())) {
        throw new Http1Error(
          this.received === 0
            ? "Connection closed before an answer"
            : "Connection closed inside the answer head",
        );
      }
    }
  }

  /** Reads one CRLF-terminated line (without the CRLF). */
  async readLine(maxBytes: number): Promise<string> {
    for (;;) {
      const at = this.#buf.subarray(this.#start, this.#end).indexOf(10);
      if (at !== -1) {
        let stop = this.#start + at;
        if (stop > this.#start && this.#buf[stop - 1] === 13) stop--;
        const line = latin1.decode(this.#buf.subarray(this.#start, stop));
        this.#start += at + 1;
        return line;
      }
      if (this.#end - this.#start > maxBytes) throw new Http1Error("Chunk line too long");
      if (!(await this.#fill())) throw new Http1Error("Connection closed inside a chunked body");
    }
  }

  /**
   * Up to `max` buffered bytes (reading when none are), copied; `undefined`
   * at the end of the connection.
   */
  async readSome(max: number): Promise<Uint8Array | undefined> {
    if (this.#start === this.#end && !(await this.#fill())) return undefined;
    const n = Math.min(max, this.#end - this.#start);
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.#start += n;
    return out;
  }
}

/** How an answer's body is framed. */
type Framing = { kind: "none" } | { kind: "length"; left: number } | { kind: "chunked" } | {
  kind: "close";
};

function parseHead(
  head: string,
): { status: number; headers: Map<string, string>; http11: boolean } {
  const lines = head.split("\r\n");
  const statusLine = lines[0] ?? "";
  const m = statusLine.match(/^HTTP\/1\.([01]) (\d{3})(?: .*)?$/);
  if (!m) throw new Http1Error(`Bad status line "${statusLine.slice(0, 80)}"`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Http1Error(`Bad header line "${line.slice(0, 80)}"`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const had = headers.get(name);
    headers.set(name, had === undefined ? value : `${had}, ${value}`);
  }
  return { status: Number(m[2]), headers, http11: m[1] === "1" };
}

function framingOf(method: string, status: number, headers: Map<string, string>): Framing {
  if (method === "HEAD" || status === 204 || status === 304 || (status >= 100 && status < 200)) {
    return { kind: "none" };
  }
  const te = headers.get("transfer-encoding");
  if (te !== undefined) {
    if (te.toLowerCase().split(",").map((s) => s.trim()).at(-1) !== "chunked") {
      throw new Http1Error(`Unsupported Transfer-Encoding "${te}"`);
    }
    return { kind: "chunked" };
  }
  const cl = headers.get("content-length");
  if (cl !== undefined) {
    if (!/^\d+$/.test(cl)) throw new Http1Error(`Bad Content-Length "${cl}"`);
    return { kind: "length", left: Number(cl) };
  }
  return { kind: "close" };
}

/** The body's pieces as they arrive, per its framing. */
async function* bodyOf(conn: Connection, framing: Framing): AsyncGenerator<Uint8Array> {
  switch (framing.kind) {
    case "none":
      return;
    case "length": {
      let left = framing.left;
      while (left > 0) {
        const piece = await conn.readSome(left);
        if (!piece) throw new Http1Error(`Connection closed with ${left} body bytes missing`);
        left -= piece.length;
        yield piece;
      }
      return;
    }
    case "chunked": {
      for (;;) {
        const line = await conn.readLine(4096);
        const size = line.split(";")[0]!.trim();
        if (!/^[0-9a-fA-F]{1,12}$/.test(size)) {
          throw new Http1Error(`Bad chunk size "${line.slice(0, 40)}"`);
        }
        let left = parseInt(size, 16);
        if (left === 0) {
          // Trailers up to the empty line.
          while ((await conn.readLine(16 * 1024)) !== "");
          return;
        }
        while (left > 0) {
          const piece = await conn.readSome(left);
          if (!piece) throw new Http1Error("Connection closed inside a chunk");
          left -= piece.length;
          yield piece;
        }
        if ((await conn.readLine(2)) !== "") throw new Http1Error("Chunk not followed by CRLF");
      }
    }
    case "close":
      for (;;) {
        const piece = await conn.readSome(64 * 1024);
        if (!piece) return;
        yield piece;
      }
  }
}

/** HTTP/1.1 client for one `host:port`; see the module doc. */
export class Http1Client {
  readonly #hostname: string;
  readonly #port: number;
  readonly #hostHeader: string;
  readonly #maxIdle: number;
  readonly #maxHead: number;
  readonly #idle: Connection[] = [];
  readonly #busy = new Set<Connection>();
  readonly #maxRequests: number;
  #requests = 0;
  readonly #waiting: (() => void)[] = [];
  #closed = false;

  /** A client for `endpoint` (`host:port`); connects on the first request. */
  constructor(endpoint: string, options: Http1ClientOptions = {}) {
    const { hostname, port } = parseEndpoint(endpoint);
    this.#hostname = hostname;
    this.#port = port;
    this.#hostHeader = endpoint;
    this.#maxIdle = options.maxIdle ?? 4;
    this.#maxHead = options.maxHeadBytes ?? 64 * 1024;
    const most = options.maxRequests ?? Infinity;
    if (!(most >= 1)) {
      throw new RangeError(`Option "maxRequests" must be at least 1, but got ${most}`);
    }
    this.#maxRequests = most;
  }

  /** Requests waiting for one of `maxRequests` places. */
  get waitingRequests(): number {
    return this.#waiting.length;
  }

  /** Takes one of `maxRequests` places, waiting in order when all are taken. */
  #enter(): Promise<void> | undefined {
    if (this.#requests < this.#maxRequests) {
      this.#requests++;
      return undefined;
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Hands a finished request's place to the next waiting one. */
  #leave(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#requests--;
  }

  /** Idle connections kept for reuse. */
  get idleConnections(): number {
    return this.#idle.length;
  }

  /** Closes every connection, idle or busy (requests in flight fail); the client stays usable. */
  closeAll(): void {
    for (const conn of this.#idle.splice(0)) conn.close();
    for (const conn of this.#busy) conn.close();
    this.#busy.clear();
  }

  /** Closes every connection and refuses further requests. */
  close(): void {
    this.#closed = true;
    this.closeAll();
  }

  #encodeRequest(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Uint8Array,
  ): Uint8Array {
    let head = `${method} ${path} HTTP/1.1\r\nHost: ${this.#hostHeader}\r\n`;
    for (const [name, value] of Object.entries(headers)) {
      if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) {
        throw new TypeError(`Invalid header "${name}": it holds a line break`);
      }
      head += `${name}: ${value}\r\n`;
    }
    head += `Content-Length: ${body.length}\r\n\r\n`;
    const headBytes = encoder.encode(head);
    const out = new Uint8Array(headBytes.length + body.length);
    out.set(headBytes);
    out.set(body, headBytes.length);
    return out;
  }

  async #connect(): Promise<Connection> {
    const tcp = await Deno.connect({ hostname: this.#hostname, port: this.#port });
    tcp.setNoDelay(true);
    return new Connection(tcp);
  }

  /**
   * Sends the request on an idle connection (else a new one) and reads the
   * answer head. A reused connection the server closed while it was idle
   * (no byte of an answer) is replaced once by a fresh one.
   */
  async #exchange(
    bytes: Uint8Array,
    method: string,
    using: (conn: Connection) => void,
  ): Promise<{ conn: Connection; status: number; headers: Map<string, string>; reuse: boolean }> {
    if (this.#closed) throw new Http1Error("Client closed");
    for (let attempt = 0;; attempt++) {
      const reused = this.#idle.pop();
      const conn = reused ?? await this.#connect();
      this.#busy.add(conn);
      using(conn);
      conn.received = 0;
      try {
        await conn.write(bytes);
        const { status, headers, http11 } = parseHead(await conn.readHead(this.#maxHead));
        const connection = (headers.get("connection") ?? "").toLowerCase();
        const reuse = http11 ? !connection.includes("close") : connection.includes("keep-alive");
        return { conn, status, headers, reuse };
      } catch (error) {
        this.#busy.delete(conn);
        conn.close();
        if (reused && conn.received === 0 && attempt === 0 && !this.#closed) continue;
        if (error instanceof Http1Error) throw error;
        throw new Http1Error(`${method} failed: ${(error as Error).message}`, { cause: error });
      }
    }
  }

  #release(conn: Connection, reuse: boolean): void {
    this.#busy.delete(conn);
    if (reuse && !conn.closed && !this.#closed && this.#idle.length < this.#maxIdle) {
      this.#idle.push(conn);
    } else {
      conn.close();
    }
  }

  /**
   * Sends `method path` with `body` and resolves with the whole answer.
   * With `timeoutMs`, the connection is closed (and the call rejects) when
   * the answer is not complete by then (counted once the request has its
   * place among `maxRequests`).
   */
  async request(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Uint8Array,
    timeoutMs?: number,
  ): Promise<Http1Response> {
    const wait = this.#enter();
    if (wait) await wait;
    try {
      return await this.#request(method, path, headers, body, timeoutMs);
    } finally {
      this.#leave();
    }
  }

  async #request(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Uint8Array,
    timeoutMs?: number,
  ): Promise<Http1Response> {
    const bytes = this.#encodeRequest(method, path, headers, body);
    let timedOut = false;
    let current: Connection | undefined;
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      current?.close();
    }, timeoutMs);
    try {
      const { conn, status, headers: answer, reuse } = await this.#exchange(
        bytes,
        method,
        (conn) => {
          current = conn;
          if (timedOut) conn.close();
        },
      );
      const pieces: Uint8Array[] = [];
      let size = 0;
      let framing: Framing;
      try {
        framing = framingOf(method, status, answer);
        for await (const piece of bodyOf(conn, framing)) {
          pieces.push(piece);
          size += piece.length;
        }
      } catch (error) {
        this.#busy.delete(conn);
        conn.close();
        throw error;
      }
      this.#release(conn, reuse && framing.kind !== "close");
      let body: Uint8Array;
      if (pieces.length === 1) body = pieces[0]!;
      else {
        body = new Uint8Array(size);
        let at = 0;
        for (const piece of pieces) (body.set(piece, at), at += piece.length);
      }
      return { status, headers: answer, body };
    } catch (error) {
      if (timedOut) throw new Http1Error(`${method} ${path} timed out after ${timeoutMs} ms`);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Sends `method path` with `body` on a connection of its own and resolves
   * once the answer head is in; the body is read as it arrives. The
   * connection is never reused.
   */
  async stream(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Uint8Array,
  ): Promise<Http1Stream> {
    if (this.#closed) throw new Http1Error("Client closed");
    const bytes = this.#encodeRequest(method, path, headers, body);
    const conn = await this.#connect();
    this.#busy.add(conn);
    let status: number;
    let answer: Map<string, string>;
    try {
      await conn.write(bytes);
      ({ status, headers: answer } = parseHead(await conn.readHead(this.#maxHead)));
    } catch (error) {
      this.#busy.delete(conn);
      conn.close();
      if (error instanceof Http1Error) throw error;
      throw new Http1Error(`${method} failed: ${(error as Error).message}`, { cause: error });
    }
    const close = () => {
      this.#busy.delete(conn);
      conn.close();
    };
    let framing: Framing;
    try {
      framing = framingOf(method, status, answer);
    } catch (error) {
      close();
      throw error;
    }
    async function* pieces(): AsyncGenerator<Uint8Array> {
      try {
        for await (const piece of bodyOf(conn, framing)) yield piece;
      } catch (error) {
        // Closed on purpose: the body just ends.
        if (!conn.closed) throw error;
      } finally {
        close();
      }
    }
    return { status, headers: answer, body: pieces(), close };
  }
}
