/**
 * A minimal RESP client for partition tests: one connection, one command at
 * a time, every step bounded by a time-out (a peer behind a cut link never
 * answers), replies of the simple kinds (`+`, `-`, `:`, `$`) as their text.
 *
 * @module
 */

/** A reply: `+OK` → `OK`; `:1` → `1`; `$3 foo` → `foo`; an error `-ERR x` → thrown. */
export class RespError extends Error {
  /** Creates the error of a `-` reply. */
  constructor(message: string) {
    super(message);
    this.name = "RespError";
  }
}

/** A parsed reply. */
export type RespValue = string | RespError | RespValue[];

/** The value starting at `i` of `text` and where it ends, or `undefined` while incomplete. */
function parseValue(text: string, i: number): { value: RespValue; end: number } | undefined {
  const eol = text.indexOf("\r\n", i);
  if (eol < 0) return undefined;
  const head = text[i];
  const line = text.slice(i + 1, eol);
  if (head === "+" || head === ":") return { value: line, end: eol + 2 };
  if (head === "-") return { value: new RespError(line), end: eol + 2 };
  const n = Number(line);
  if (head === "$") {
    if (n < 0) return { value: "", end: eol + 2 };
    if (text.length < eol + 2 + n + 2) return undefined;
    return { value: text.slice(eol + 2, eol + 2 + n), end: eol + 2 + n + 2 };
  }
  if (head === "*") {
    const items: RespValue[] = [];
    let at = eol + 2;
    for (let k = 0; k < Math.max(0, n); k++) {
      const item = parseValue(text, at);
      if (!item) return undefined;
      items.push(item.value);
      at = item.end;
    }
    return { value: items, end: at };
  }
  throw new Error(`Bad RESP reply: ${JSON.stringify(text.slice(i, i + 20))}`);
}

function encode(args: string[]): Uint8Array {
  let text = `*${args.length}\r\n`;
  for (const a of args) text += `$${new TextEncoder().encode(a).length}\r\n${a}\r\n`;
  return new TextEncoder().encode(text);
}

/** One connection to a redis-server (connects on first use, again after any failure). */
export class RespClient {
  readonly host: string;
  readonly port: number;
  readonly #password: string | undefined;
  #conn: Deno.TcpConn | undefined;
  #buffer = "";

  /** A client of `host:port` logging in with `password` when given. */
  constructor(host: string, port: number, password?: string) {
    this.host = host;
    this.port = port;
    this.#password = password;
  }

  /** Runs one command within `timeoutMs`; returns the reply's text, throws on an error reply or failure. */
  command(args: string[], timeoutMs = 1000): Promise<string> {
    return this.#bounded(async () => {
      const conn = await this.#connection();
      await conn.write(encode(args));
      return await this.#reply(conn);
    }, timeoutMs);
  }

  /**
   * Runs `commands` as one MULTI/EXEC within `timeoutMs`; returns EXEC's
   * replies (an error inside stays a {@linkcode RespError} item); throws when
   * the transaction is refused as a whole (e.g. NOREPLICAS) or fails.
   */
  transaction(commands: string[][], timeoutMs = 1000): Promise<RespValue[]> {
    return this.#bounded(async () => {
      const conn = await this.#connection();
      await conn.write(encode(["MULTI"]));
      await this.#reply(conn);
      for (const c of commands) {
        await conn.write(encode(c));
        try {
          await this.#reply(conn); // QUEUED
        } catch (error) {
          // Refused at once (NOREPLICAS, READONLY): leave the transaction.
          await conn.write(encode(["DISCARD"]));
          await this.#reply(conn);
          throw error;
        }
      }
      await conn.write(encode(["EXEC"]));
      const value = await this.#value(conn);
      if (value instanceof RespError) throw value;
      if (!Array.isArray(value)) throw new Error(`EXEC answered ${JSON.stringify(value)}`);
      return value;
    }, timeoutMs);
  }

  async #bounded<T>(run: () => Promise<T>, timeoutMs: number): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.close();
        reject(new Error(`no answer from ${this.host}:${this.port} in ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([run(), expired]);
    } catch (error) {
      // After an error reply the connection is still in step; after anything else it is not.
      if (!(error instanceof RespError) || this.#buffer !== "") this.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  async #connection(): Promise<Deno.TcpConn> {
    if (this.#conn) return this.#conn;
    const conn = await Deno.connect({ hostname: this.host, port: this.port });
    this.#conn = conn;
    this.#buffer = "";
    if (this.#password !== undefined) {
      await conn.write(encode(["AUTH", this.#password]));
      await this.#reply(conn);
    }
    return conn;
  }

  async #reply(conn: Deno.TcpConn): Promise<string> {
    const value = await this.#value(conn);
    if (value instanceof RespError) throw value;
    return Array.isArray(value) ? JSON.stringify(value) : value;
  }

  /** Reads one whole RESP value: text, an array of values, or an error (returned, not thrown). */
  async #value(conn: Deno.TcpConn): Promise<RespValue> {
    for (;;) {
      const parsed = parseValue(this.#buffer, 0);
      if (parsed) {
        this.#buffer = this.#buffer.slice(parsed.end);
        return parsed.value;
      }
      const buf = new Uint8Array(4096);
      const n = await conn.read(buf);
      if (n === null) throw new Error(`${this.host}:${this.port} closed the connection`);
      this.#buffer += new TextDecoder().decode(buf.subarray(0, n));
    }
  }

  /** Closes the connection (the next command opens another). */
  close(): void {
    try {
      this.#conn?.close();
    } catch {
      // closed
    }
    this.#conn = undefined;
    this.#buffer = "";
  }
}
