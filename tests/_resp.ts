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
  async command(args: string[], timeoutMs = 1000): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.close();
        reject(new Error(`no answer from ${this.host}:${this.port} in ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.#run(args), expired]);
    } catch (error) {
      if (!(error instanceof RespError)) this.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  async #run(args: string[]): Promise<string> {
    if (!this.#conn) {
      const conn = await Deno.connect({ hostname: this.host, port: this.port });
      this.#conn = conn;
      this.#buffer = "";
      if (this.#password !== undefined) {
        await conn.write(encode(["AUTH", this.#password]));
        await this.#reply(conn);
      }
    }
    const conn = this.#conn;
    await conn.write(encode(args));
    return await this.#reply(conn);
  }

  async #reply(conn: Deno.TcpConn): Promise<string> {
    const buf = new Uint8Array(4096);
    for (;;) {
      const eol = this.#buffer.indexOf("\r\n");
      if (eol >= 0) {
        const head = this.#buffer[0];
        const line = this.#buffer.slice(1, eol);
        if (head === "$") {
          const n = Number(line);
          if (n < 0) {
            this.#buffer = this.#buffer.slice(eol + 2);
            return "";
          }
          if (this.#buffer.length >= eol + 2 + n + 2) {
            const value = this.#buffer.slice(eol + 2, eol + 2 + n);
            this.#buffer = this.#buffer.slice(eol + 2 + n + 2);
            return value;
          }
        } else {
          this.#buffer = this.#buffer.slice(eol + 2);
          if (head === "-") throw new RespError(line);
          return line;
        }
      }
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
