/**
 * A direct check of one redis-server: a fresh TCP connection, `PING` and
 * `ROLE` pipelined (after `AUTH` when a password is given), one deadline for
 * the whole exchange, the connection closed afterwards. It needs nothing but
 * `Deno.connect`, so the scheduler can ask a process itself instead of
 * trusting that its executor's silence means death.
 *
 * Any reply counts as an answer: an error such as `LOADING`, `NOAUTH` or
 * `BUSY` still proves the server is alive and serving its event loop.
 *
 * @module
 */

/** Where and how to check. */
export interface ProbeTarget {
  /** Host or IP of the redis-server. */
  host: string;
  /** Its port. */
  port: number;
  /** Deadline of the whole exchange (connect included), in ms. */
  timeoutMs: number;
  /** Sent as `AUTH [username] password` first, when set. */
  password?: string;
  /** ACL user for `AUTH` (needs `password`). */
  username?: string;
}

/** What a probe found out. */
export type ProbeResult =
  | {
    ok: true;
    /** First element of `ROLE` (`master`, `slave`), or `unknown` when ROLE was refused. */
    role: string;
    /** Time from the start to the last reply, in ms. */
    latencyMs: number;
  }
  | {
    ok: false;
    /** What failed, one line. */
    error: string;
    /** Time from the start to the failure, in ms. */
    latencyMs: number;
    /** The deadline ran out (rather than a refusal or a broken connection). */
    timedOut: boolean;
  };

/** One decoded RESP value (enough of RESP2 for PING, ROLE and AUTH replies). */
export type RespValue = string | number | null | RespError | RespValue[];

/** An error reply (`-ERR ...`). */
export class RespError {
  /** The text after the `-`. */
  readonly message: string;
  /** Wraps an error reply. */
  constructor(message: string) {
    this.message = message;
  }
}

/** Encodes one command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly string[]): Uint8Array {
  const enc = new TextEncoder();
  const parts = args.map((a) => enc.encode(a));
  let head = `*${args.length}\r\n`;
  const chunks: Uint8Array[] = [];
  for (const p of parts) {
    chunks.push(enc.encode(`${head}$${p.length}\r\n`), p);
    head = "\r\n";
  }
  chunks.push(enc.encode("\r\n"));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Decodes one RESP value from `buf` at `at`. Returns the value and the index
 * just past it, or `undefined` when `buf` does not hold all of it yet. Throws
 * a `TypeError` on bytes that are not RESP.
 */
export function decodeReply(
  buf: Uint8Array,
  at = 0,
): { value: RespValue; end: number } | undefined {
  const eol = lineEnd(buf, at);
  if (eol < 0) return undefined;
  const head = String.fromCharCode(buf[at]!);
  const line = new TextDecoder().decode(buf.subarray(at + 1, eol));
  const next = eol + 2;
  switch (head) {
    case "+":
      return { value: line, end: next };
    case "-":
      return { value: new RespError(line), end: next };
    case ":":
      return { value: Number(line), end: next };
    case "$": {
      const n = Number(line);
      if (!Number.isInteger(n) || n < -1) throw new TypeError(`Bad RESP bulk length "${line}"`);
      if (n === -1) return { value: null, end: next };
      if (buf.length < next + n + 2) return undefined;
      return { value: new TextDecoder().decode(buf.subarray(next, next + n)), end: next + n + 2 };
    }
    case "*": {
      const n = Number(line);
      if (!Number.isInteger(n) || n < -1) throw new TypeError(`Bad RESP array length "${line}"`);
      if (n === -1) return { value: null, end: next };
      const items: RespValue[] = [];
      let pos = next;
      for (let i = 0; i < n; i++) {
        const item = decodeReply(buf, pos);
        if (!item) return undefined;
        items.push(item.value);
        pos = item.end;
      }
      return { value: items, end: pos };
    }
    default:
      throw new TypeError(`Bad RESP reply starting with ${JSON.stringify(head)}`);
  }
}

function lineEnd(buf: Uint8Array, from: number): number {
  for (let i = from; i + 1 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10) return i;
  }
  return -1;
}

/** Largest reply accepted (ROLE of a master lists its replicas: small). */
const MAX_REPLY_BYTES = 1 << 20;

/**
 * Checks `target` directly. Never throws: a refusal, a broken connection, a
 * reply that is not RESP or the deadline all come back as `ok: false`.
 */
export async function probeRedis(target: ProbeTarget): Promise<ProbeResult> {
  const began = performance.now();
  const elapsed = () => Math.round(performance.now() - began);
  let conn: Deno.TcpConn | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      try {
        conn?.close();
      } catch {
        // already closed
      }
      reject(new Error(`no answer within ${target.timeoutMs} ms`));
    }, target.timeoutMs);
  });
  const exchange = async (): Promise<string> => {
    conn = await Deno.connect({ hostname: target.host, port: target.port });
    if (timedOut) {
      conn.close();
      throw new Error(`no answer within ${target.timeoutMs} ms`);
    }
    const commands: string[][] = [];
    if (target.password !== undefined) {
      commands.push(
        target.username !== undefined
          ? ["AUTH", target.username, target.password]
          : ["AUTH", target.password],
      );
    }
    commands.push(["PING"], ["ROLE"]);
    const out = commands.map(encodeCommand);
    const request = new Uint8Array(out.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of out) {
      request.set(c, at);
      at += c.length;
    }
    for (let written = 0; written < request.length;) {
      written += await conn.write(request.subarray(written));
    }
    const replies: RespValue[] = [];
    let buf = new Uint8Array(0);
    const chunk = new Uint8Array(4096);
    while (replies.length < commands.length) {
      let decoded = decodeReply(buf);
      while (decoded && replies.length < commands.length) {
        replies.push(decoded.value);
        buf = buf.subarray(decoded.end);
        decoded = buf.length > 0 ? decodeReply(buf) : undefined;
      }
      if (replies.length === commands.length) break;
      const n = await conn.read(chunk);
      if (n === null) throw new Error("connection closed before the answer");
      const grown = new Uint8Array(buf.length + n);
      grown.set(buf);
      grown.set(chunk.subarray(0, n), buf.length);
      buf = grown;
      if (buf.length > MAX_REPLY_BYTES) throw new Error("answer too long");
    }
    const role = replies[replies.length - 1];
    return Array.isArray(role) && typeof role[0] === "string" ? role[0] : "unknown";
  };
  try {
    const role = await Promise.race([exchange(), deadline]);
    return { ok: true, role, latencyMs: elapsed() };
  } catch (error) {
    return {
      ok: false,
      error: error instanceof Error ? error.message : String(error),
      latencyMs: elapsed(),
      timedOut,
    };
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch {
      // closed by the deadline
    }
  }
}
