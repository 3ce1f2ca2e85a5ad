/**
 * A resumable scanner of client requests (RESP arrays of bulk strings): it
 * finds where each complete command ends and what kind it is, from its name
 * only, without decoding the arguments.
 *
 * @module
 */

/** A command any connection may share: one request, one reply. */
export const KIND_SHARED = 0;
/** A command that needs a server connection of the client's own from here on. */
export const KIND_PIN = 1;
/** `AUTH`: answered by the proxy itself when it holds the instance password. */
export const KIND_AUTH = 2;
/** `QUIT`: answered `+OK` by the proxy, then the connection is closed. */
export const KIND_QUIT = 3;
/**
 * Not a well-formed RESP array (an inline command, a protocol error): the
 * client is handed to a connection of its own from the start of this command
 * so the server answers exactly as it would directly. Scanning stops there.
 */
export const KIND_RAW = 4;

/**
 * Commands that change the state of their connection or hold it (transactions,
 * blocking reads, pub/sub, MONITOR, database, client settings, protocol,
 * replication): a client sending one gets a server connection of its own.
 */
export const PINNING_COMMANDS: ReadonlySet<string> = new Set([
  "multi",
  "watch",
  "blpop",
  "brpop",
  "brpoplpush",
  "blmove",
  "blmpop",
  "bzpopmin",
  "bzpopmax",
  "bzmpop",
  "xread",
  "xreadgroup",
  "wait",
  "waitaof",
  "subscribe",
  "psubscribe",
  "ssubscribe",
  "unsubscribe",
  "punsubscribe",
  "sunsubscribe",
  "monitor",
  "select",
  "client", // every subcommand but SETINFO, which only labels the connection
  "auth",
  "hello",
  "reset",
  "readonly",
  "readwrite",
  "asking",
  "sync",
  "psync",
  "replconf",
]);

const CR = 13;
const LF = 10;
const MAX_NAME = 24;

/** Finds complete commands and their kinds in a request stream fed chunk by chunk. */
export class RequestScanner {
  /** Whether the proxy answers AUTH itself (it holds the password). */
  readonly #localAuth: boolean;
  /** 0 at a command start; 1 reading the `*N` count; 2 expecting `$`; 3 reading a `$len`; 4 in a payload. */
  #phase = 0;
  #num = 0;
  #wantLf = false;
  #argsLeft = 0;
  #bulkLeft = 0;
  /** Index of the argument being read (0: the command name). */
  #arg = 0;
  #name = "";
  /** Whether the argument being read is part of the name. */
  #capture = false;

  /** Makes a scanner; `localAuth` makes `AUTH` its own kind instead of pinning. */
  constructor(localAuth = false) {
    this.#localAuth = localAuth;
  }

  /**
   * Scans `buf[start, end)`. For each complete command writes the offset after
   * it into `ends` and its kind into `kinds`; returns how many. A
   * {@linkcode KIND_RAW} entry (offset -1) ends the scan: the bad command
   * starts where the previous complete command ended (or where the bytes kept
   * from earlier chunks start), and the caller stops using this scanner.
   */
  scan(buf: Uint8Array, start: number, end: number, ends: number[], kinds: number[]): number {
    let count = 0;
    let i = start;
    while (i < end) {
      switch (this.#phase) {
        case 0: {
          if (buf[i] !== 42) return this.#raw(ends, kinds, count); // inline command
          i++;
          this.#phase = 1;
          this.#num = 0;
          this.#wantLf = false;
          break;
        }
        case 1:
        case 3: {
          const c = buf[i++]!;
          if (this.#wantLf) {
            if (c !== LF) return this.#raw(ends, kinds, count);
            this.#wantLf = false;
            const n = this.#num;
            this.#num = 0;
            if (this.#phase === 1) {
              if (n <= 0) return this.#raw(ends, kinds, count);
              this.#argsLeft = n;
              this.#arg = 0;
              this.#name = "";
              this.#capture = true;
              this.#phase = 2;
            } else {
              this.#bulkLeft = n + 2;
              this.#phase = 4;
            }
          } else if (c === CR) {
            this.#wantLf = true;
          } else if (c >= 48 && c <= 57 && this.#num < 1e10) {
            this.#num = this.#num * 10 + (c - 48);
          } else {
            return this.#raw(ends, kinds, count);
          }
          break;
        }
        case 2: {
          if (buf[i++] !== 36) return this.#raw(ends, kinds, count);
          this.#phase = 3;
          break;
        }
        default: { // 4: payload (then CRLF)
          const take = Math.min(this.#bulkLeft, end - i);
          if (this.#capture) {
            const stop = Math.min(i + take, i + Math.max(0, this.#bulkLeft - 2));
            let name = this.#name;
            for (let j = i; j < stop && name.length < MAX_NAME; j++) {
              const b = buf[j]!;
              name += String.fromCharCode(b >= 65 && b <= 90 ? b | 32 : b);
            }
            this.#name = name;
          }
          i += take;
          this.#bulkLeft -= take;
          if (this.#bulkLeft > 0) break;
          if (this.#arg++ === 0 && this.#name === "client") {
            this.#name = "client "; // the subcommand matters too
          } else {
            this.#capture = false;
          }
          if (--this.#argsLeft > 0) {
            this.#phase = 2;
            break;
          }
          this.#phase = 0;
          ends[count] = i;
          kinds[count++] = this.#kindOf(this.#name);
        }
      }
    }
    return count;
  }

  /**
   * The name of the last command seen (lower case, at most 24 characters;
   * `client` followed by a space and its subcommand).
   */
  get lastName(): string {
    return this.#name;
  }

  #kindOf(name: string): number {
    if (name === "get" || name === "set") return KIND_SHARED;
    if (name === "quit") return KIND_QUIT;
    // Client libraries send this on connect; it only labels the connection.
    if (name.startsWith("client ")) return name === "client setinfo" ? KIND_SHARED : KIND_PIN;
    if (name === "auth" && this.#localAuth) return KIND_AUTH;
    return PINNING_COMMANDS.has(name) ? KIND_PIN : KIND_SHARED;
  }

  #raw(ends: number[], kinds: number[], count: number): number {
    ends[count] = -1;
    kinds[count] = KIND_RAW;
    this.#phase = 0;
    return count + 1;
  }
}
