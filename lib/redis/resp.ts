/**
 * The Redis protocol (RESP2) on one TCP connection: commands written as
 * arrays of bulk strings, replies parsed as they arrive and handed to the
 * calls in order. It is what the executor's few commands need and nothing
 * more (no pub/sub, no RESP3, no reconnection): small enough that the
 * executor starts without a general-purpose client library.
 *
 * Replies map to: simple and bulk strings → `string`, nil → `null`,
 * integers → `number`, arrays → arrays; an error reply rejects with a
 * {@linkcode RedisReplyError}.
 *
 * @module
 */

import { concat } from "../bytes.ts";

/** An error reply from redis-server (`ERR ...`, `NOREPLICAS ...`, `LOADING ...`). */
export class RedisReplyError extends Error {
  /** Makes the error from the reply text. */
  constructor(message: string) {
    super(message);
    // The name callers test for (the one ioredis used too).
    this.name = "ReplyError";
  }
}

/** A RESP reply. */
export type RespValue = string | number | null | RedisReplyError | RespValue[];

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CR = 13;

/** Encodes one command as a RESP array of bulk strings. */
export function encodeCommand(args: (string | number)[]): Uint8Array {
  const parts: Uint8Array[] = [encoder.encode(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = encoder.encode(String(arg));
    parts.push(encoder.encode(`$${bytes.length}\r\n`), bytes, encoder.encode("\r\n"));
  }
  return concat(parts);
}

/** Thrown by {@linkcode parseReply} for bytes that are not RESP. */
export class RespProtocolError extends Error {
  /** Makes the error. */
  constructor(message: string) {
    super(message);
    this.name = "RespProtocolError";
  }
}

function lineEnd(buf: Uint8Array, from: number): number {
  for (let i = from; i + 1 < buf.length; i++) {
    if (buf[i] === CR && buf[i + 1] === 10) return i;
  }
  return -1;
}

/**
 * Parses one reply starting at `from`; returns it with the offset after it,
 * or `undefined` when `buf` does not hold all of it yet.
 */
export function parseReply(
  buf: Uint8Array,
  from = 0,
): { value: RespValue; next: number } | undefined {
  if (from >= buf.length) return undefined;
  const end = lineEnd(buf, from + 1);
  if (end < 0) return undefined;
  const type = buf[from];
  const line = decoder.decode(buf.subarray(from + 1, end));
  const next = end + 2;
  switch (type) {
    case 43: // +
      return { value: line, next };
    case 45: // -
      return { value: new RedisReplyError(line), next };
    case 58: // :
      return { value: Number(line), next };
    case 36: { // $
      const len = Number(line);
      if (len < 0) return { value: null, next };
      if (!Number.isInteger(len)) throw new RespProtocolError(`Bad bulk length "${line}"`);
      if (buf.length < next + len + 2) return undefined;
      return { value: decoder.decode(buf.subarray(next, next + len)), next: next + len + 2 };
    }
    case 42: { // *
      const count = Number(line);
      if (count < 0) return { value: null, next };
      if (!Number.isInteger(count)) throw new RespProtocolError(`Bad array length "${line}"`);
      const items: RespValue[] = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, at);
        if (!item) return undefined;
        items.push(item.value);
        at = item.next;
      }
      return { value: items, next: at };
    }
    default:
      throw new RespProtocolError(`Unexpected reply type byte ${type}`);
  }
}

interface Pending {
  resolve: (value: RespValue) => void;
  reject: (error: Error) => void;
}

/** One open connection to a redis-server; replies are matched to commands in order. */
export class RespConnection {
  readonly #conn: Deno.TcpConn;
  readonly #pending: Pending[] = [];
  #buffer = new Uint8Array(0);
  #closed: Error | undefined;
  /** Resolves once the connection has closed (by either side). */
  readonly closed: Promise<void>;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    this.closed = this.#readLoop();
  }

  /** Opens a connection to `host:port`. */
  static async open(host: string, port: number): Promise<RespConnection> {
    const conn = await Deno.connect({ hostname: host, port });
    conn.setNoDelay(true);
    return new RespConnection(conn);
  }

  /** True once the connection can no longer be used. */
  get isClosed(): boolean {
    return this.#closed !== undefined;
  }

  /** Sends one command; resolves with its reply (error replies resolve as {@linkcode RedisReplyError}). */
  send(args: (string | number)[]): Promise<RespValue> {
    if (this.#closed) return Promise.reject(this.#closed);
    const reply = new Promise<RespValue>((resolve, reject) => {
      this.#pending.push({ resolve, reject });
    });
    this.#write(encodeCommand(args));
    return reply;
  }

  async #write(bytes: Uint8Array): Promise<void> {
    try {
      let at = 0;
      while (at < bytes.length) at += await this.#conn.write(bytes.subarray(at));
    } catch (error) {
      this.#fail(new Error(`Write failed: ${(error as Error).message}`));
    }
  }

  async #readLoop(): Promise<void> {
    // Small: one per connection, and most answers are short (a longer one is joined in #take).
    const chunk = new Uint8Array(16 * 1024);
    try {
      while (true) {
        const n = await this.#conn.read(chunk);
        if (n === null) break;
        this.#take(chunk.subarray(0, n));
      }
      this.#fail(new Error("Connection closed by the server"));
    } catch (error) {
      this.#fail(
        error instanceof RespProtocolError
          ? error
          : new Error(`Connection failed: ${(error as Error).message}`),
      );
    }
  }

  #take(bytes: Uint8Array): void {
    if (this.#buffer.length === 0) {
      this.#buffer = bytes.slice();
    } else {
      const joined = new Uint8Array(this.#buffer.length + bytes.length);
      joined.set(this.#buffer);
      joined.set(bytes, this.#buffer.length);
      this.#buffer = joined;
    }
    let at = 0;
    while (true) {
      const reply = parseReply(this.#buffer, at);
      if (!reply) break;
      at = reply.next;
      const waiter = this.#pending.shift();
      if (!waiter) throw new RespProtocolError("A reply arrived for no command");
      waiter.resolve(reply.value);
    }
    this.#buffer = at === this.#buffer.length ? new Uint8Array(0) : this.#buffer.slice(at);
  }

  #fail(error: Error): void {
    if (this.#closed) return;
    this.#closed = error;
    for (const waiter of this.#pending.splice(0)) waiter.reject(error);
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }

  /** Closes the connection; commands still waiting reject. */
  close(): void {
    this.#fail(new Error("Connection closed"));
  }
}
