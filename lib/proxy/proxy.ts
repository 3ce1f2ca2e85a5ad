/**
 * The proxy engine: one listening address in front of the master of a Redis
 * instance, following the master as it moves.
 *
 * Ordinary commands of every client are batched onto one shared server
 * connection (one write and one read of the server for many clients); the
 * replies are cut at reply boundaries and handed back as views of the read
 * buffer. A client whose command changes or holds its connection (MULTI,
 * WATCH, blocking reads, pub/sub, MONITOR, SELECT, CLIENT, AUTH, HELLO ...)
 * gets a server connection of its own from that command on, for the rest of
 * its life, as a plain byte pipe. See README.md.
 *
 * @module
 */

import { concat, writeAll } from "../bytes.ts";
import { ReplyScanner } from "./reply_scanner.ts";
import {
  KIND_AUTH,
  KIND_PIN,
  KIND_QUIT,
  KIND_RAW,
  KIND_SHARED,
  RequestScanner,
} from "./request_scanner.ts";

/** Where the master of the instance is, and the failover epoch that says so. */
export interface MasterAddress {
  host: string;
  port: number;
  /** The instance's failover epoch; an update with a lower epoch is ignored. */
  epoch?: number;
}

/** Options of {@linkcode RedisProxy}. */
export interface ProxyOptions {
  /** Address to listen on. Default `0.0.0.0`. */
  hostname?: string;
  /** Port to listen on; 0 picks a free one. Default 0. */
  port?: number;
  /** Instance name, used in error lines sent to clients. Default `redis`. */
  name?: string;
  /**
   * How long a connection arriving while there is no usable master waits for
   * one before it gets an `-ERR` line and is closed, in ms. Default 2000.
   */
  waitMs?: number;
  /**
   * The instance password. When set the proxy authenticates its own server
   * connections and answers clients' `AUTH` itself; clients must AUTH first.
   */
  password?: string;
  /** How often the proxy asks its master `ROLE`, in ms. Default 1000. */
  roleCheckMs?: number;
  /** Deadline of a connection to the master, in ms. Default 1000. */
  connectTimeoutMs?: number;
  /** Pause between attempts to reach a master that failed, in ms. Default 200. */
  retryMs?: number;
  /** Receives one line per notable event. Default: dropped. */
  log?: (line: string) => void;
  /**
   * Listen with SO_REUSEPORT so other threads can listen on the same port
   * (see {@linkcode ProxyGroup}); needs Deno's `--unstable-net`.
   */
  reusePort?: boolean;
}

/** Counters of a running proxy. */
export interface ProxyStats {
  /** Client connections open (bound or waiting). */
  clients: number;
  /** Client connections waiting for a master. */
  waiting: number;
  /** Client connections with a server connection of their own. */
  pinned: number;
  /** The master followed, if any. */
  master: MasterAddress | null;
  /** Whether the shared connection to the master is up and the master says it is one. */
  ready: boolean;
  /** Why the master is not usable, when it is not. */
  reason: string;
  /** Times the followed master changed (setMaster with a new address). */
  switches: number;
}

const encoder = new TextEncoder();
const OK = encoder.encode("+OK\r\n");
const NOAUTH = encoder.encode("-NOAUTH Authentication required.\r\n");
const WRONGPASS = encoder.encode(
  "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
);
const EMPTY = new Uint8Array(0);
const READ_SIZE = 16 * 1024;
const SLAB_SIZE = 512 * 1024;
const MIN_SERVER_READ = 64 * 1024;
/**
 * A master connection's first read buffer and first output buffer: small,
 * because an executor opens one connection per proxy it is told about (dozens
 * at once in a burst of creates) and most carry little traffic. A connection
 * that fills them moves to {@linkcode SLAB_SIZE} slabs and doubles its output
 * buffer as needed.
 */
const FIRST_SLAB_SIZE = 16 * 1024;
const MIN_FIRST_READ = 4 * 1024;
const FIRST_OUT_SIZE = 4 * 1024;

/** Offsets and kinds filled by the scanners; reused (everything runs on one thread). */
const ENDS: number[] = [];
const KINDS: number[] = [];
const REPLY_ENDS: number[] = [];

function safeClose(conn: Deno.Conn | null | undefined): void {
  try {
    conn?.close();
  } catch {
    // already closed
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Encodes a command as a RESP array of bulk strings. */
export function encodeCommand(args: string[]): Uint8Array {
  let text = `*${args.length}\r\n`;
  for (const a of args) text += `$${encoder.encode(a).length}\r\n${a}\r\n`;
  return encoder.encode(text);
}

/** Decodes the arguments of one complete RESP command (used for the rare AUTH). */
function decodeArgs(bytes: Uint8Array): string[] {
  const text = new TextDecoder().decode(bytes);
  const args: string[] = [];
  let i = text.indexOf("\r\n") + 2;
  while (i < text.length) {
    const eol = text.indexOf("\r\n", i);
    if (eol < 0 || text[i] !== "$") break;
    const len = Number(text.slice(i + 1, eol));
    args.push(text.slice(eol + 2, eol + 2 + len));
    i = eol + 4 + len;
  }
  return args;
}

/** A client connection. */
class Client {
  readonly conn: Deno.TcpConn;
  backend: Backend | null = null;
  /** Replies (shared or local) still owed to this client in the shared queue. */
  outstanding = 0;
  readonly scanner: RequestScanner;
  pending: Uint8Array = new Uint8Array(0);
  pendingLen = 0;
  authed: boolean;
  queue: Uint8Array[] = [];
  writing = false;
  closeWhenWritten = false;
  /** The server connection of its own, once pinned. */
  dedicated: Deno.TcpConn | null = null;
  pinned = false;
  /** Settles once the own connection is open and its first bytes are sent (false: it failed). */
  dedicatedReady: Promise<boolean> = Promise.resolve(false);
  /** QUIT seen: close once every owed reply is written. */
  quitting = false;
  /** Replies from the own connection held until the shared ones are delivered. */
  held: Uint8Array[] = [];
  closed = false;
  waitTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(conn: Deno.TcpConn, password: string | undefined) {
    this.conn = conn;
    this.authed = password === undefined;
    this.scanner = new RequestScanner(password !== undefined);
  }

  /** Queues bytes for the client, in order. */
  send(bytes: Uint8Array): void {
    if (this.closed) return;
    if (this.writing) {
      this.queue.push(bytes);
      return;
    }
    this.writing = true;
    this.#write(bytes);
  }

  /** The bytes of the write in flight (its completion handlers are made once, not per reply). */
  #inflight: Uint8Array = EMPTY;
  readonly #onWritten = (n: number): void => {
    if (this.closed) return;
    const bytes = this.#inflight;
    if (n < bytes.length) {
      this.#write(bytes.subarray(n));
    } else if (this.queue.length > 0) {
      const parts = this.queue;
      this.queue = [];
      this.#write(concat(parts));
    } else {
      this.#inflight = EMPTY;
      this.writing = false;
      if (this.closeWhenWritten) this.close();
    }
  };
  readonly #onWriteFailed = (): void => this.close();

  /** Writes `bytes`, then whatever was queued meanwhile (no async frames: this runs per reply). */
  #write(bytes: Uint8Array): void {
    this.#inflight = bytes;
    this.conn.write(bytes).then(this.#onWritten, this.#onWriteFailed);
  }

  /**
   * Called when no shared reply is owed any more: hands over the replies of
   * the own connection held meanwhile, or finishes a QUIT.
   */
  release(): void {
    if (this.outstanding > 0) return;
    if (this.held.length > 0) {
      const held = this.held;
      this.held = [];
      for (const h of held) this.send(h);
    }
    if (this.quitting) this.closeSoon();
  }

  /** Closes the connection once the queued bytes are written. */
  closeSoon(): void {
    this.closeWhenWritten = true;
    if (!this.writing) this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.waitTimer !== undefined) clearTimeout(this.waitTimer);
    safeClose(this.conn);
    safeClose(this.dedicated);
    this.backend?.clients.delete(this);
    this.backend = null;
    this.queue = [];
    this.held = [];
  }
}

/** One entry of the shared connection's reply queue. */
interface Entry {
  /** The client owed these replies; null for the proxy's own commands. */
  client: Client | null;
  /** Replies still to come. */
  count: number;
  /** A reply made by the proxy, delivered when the queue reaches it. */
  local?: Uint8Array;
  /** For the proxy's own commands: receives the whole reply. */
  onReply?: (reply: Uint8Array) => void;
}

interface BackendOptions {
  connectTimeoutMs: number;
  roleCheckMs: number;
  password: string | undefined;
}

/** The shared connection to one master and the clients bound to it. */
class Backend {
  readonly host: string;
  readonly port: number;
  readonly clients: Set<Client> = new Set<Client>();
  state: "connecting" | "ready" | "failed" | "closed" = "connecting";
  reason = "";
  #conn: Deno.TcpConn | null = null;
  #out = new Uint8Array(FIRST_OUT_SIZE);
  #spare = new Uint8Array(FIRST_OUT_SIZE);
  #outLen = 0;
  #writing = false;
  #flushQueued = false;
  #entries: Entry[] = [];
  #head = 0;
  readonly #scanner = new ReplyScanner();
  #carry: Uint8Array[] = [];
  #roleTimer: ReturnType<typeof setInterval> | undefined;
  #roleInFlight = false;
  readonly #proxy: RedisProxy;
  readonly #opts: BackendOptions;

  constructor(proxy: RedisProxy, host: string, port: number, opts: BackendOptions) {
    this.#proxy = proxy;
    this.host = host;
    this.port = port;
    this.#opts = opts;
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** Connects, authenticates and checks ROLE; reports to the proxy. */
  async start(): Promise<void> {
    try {
      this.#conn = await connectWithin(this.host, this.port, this.#opts.connectTimeoutMs);
    } catch (error) {
      this.fail(`cannot connect to master ${this.address}: ${message(error)}`);
      return;
    }
    if (this.state === "closed") {
      safeClose(this.#conn);
      return;
    }
    this.#readLoop(this.#conn);
    if (this.#opts.password !== undefined) {
      this.#internal(["AUTH", this.#opts.password], (reply) => {
        if (reply[0] !== 43) this.fail(`master ${this.address} refused AUTH: ${lineOf(reply)}`);
      });
    }
    this.#checkRole();
    this.#roleTimer = setInterval(() => {
      if (this.state === "ready" && !this.#roleInFlight) this.#checkRole();
    }, this.#opts.roleCheckMs);
  }

  #checkRole(): void {
    this.#roleInFlight = true;
    this.#internal(["ROLE"], (reply) => {
      this.#roleInFlight = false;
      const role = roleOf(reply);
      if (role === "master") {
        if (this.state === "connecting") {
          this.state = "ready";
          this.#proxy.backendReady(this);
        }
      } else {
        this.fail(`${this.address} says it is a ${role}, not a master`);
      }
    });
  }

  #internal(args: string[], onReply: (reply: Uint8Array) => void): void {
    this.#append(encodeCommand(args), 0, undefined);
    this.#entries.push({ client: null, count: 1, onReply });
    this.#scheduleFlush();
  }

  /** Forwards `count` complete commands `bytes[from, to)` of `client`. */
  forward(client: Client, bytes: Uint8Array, from: number, to: number, count: number): void {
    this.#append(bytes, from, to);
    const last = this.#entries[this.#entries.length - 1];
    if (last && this.#entries.length > this.#head && last.client === client && !last.local) {
      last.count += count;
    } else {
      this.#entries.push({ client, count });
    }
    client.outstanding += count;
    this.#scheduleFlush();
  }

  /** Queues a reply made by the proxy after the client's earlier replies. */
  local(client: Client, bytes: Uint8Array): void {
    if (client.outstanding === 0) {
      client.send(bytes);
      return;
    }
    this.#entries.push({ client, count: 1, local: bytes });
    client.outstanding++;
  }

  #append(bytes: Uint8Array, from: number, to: number | undefined): void {
    const part = to === undefined ? bytes : bytes.subarray(from, to);
    const need = this.#outLen + part.length;
    if (need > this.#out.length) {
      let size = this.#out.length * 2;
      while (size < need) size *= 2;
      const bigger = new Uint8Array(size);
      bigger.set(this.#out.subarray(0, this.#outLen));
      this.#out = bigger;
    }
    this.#out.set(part, this.#outLen);
    this.#outLen = need;
  }

  #scheduleFlush(): void {
    if (this.#flushQueued || this.#writing || this.#conn === null) return;
    this.#flushQueued = true;
    queueMicrotask(() => this.#flush());
  }

  async #flush(): Promise<void> {
    this.#flushQueued = false;
    const conn = this.#conn;
    if (this.#writing || conn === null) return;
    this.#writing = true;
    try {
      while (this.#outLen > 0 && this.state !== "closed" && this.state !== "failed") {
        const bytes = this.#out.subarray(0, this.#outLen);
        const written = this.#out;
        this.#out = this.#spare;
        this.#spare = written;
        this.#outLen = 0;
        await writeAll(conn, bytes);
      }
    } catch (error) {
      this.fail(`lost the connection to master ${this.address}: ${message(error)}`);
    }
    this.#writing = false;
  }

  async #readLoop(conn: Deno.TcpConn): Promise<void> {
    let slab = new Uint8Array(FIRST_SLAB_SIZE);
    let off = 0;
    while (true) {
      if (slab.length - off < (slab.length === SLAB_SIZE ? MIN_SERVER_READ : MIN_FIRST_READ)) {
        slab = new Uint8Array(SLAB_SIZE);
        off = 0;
      }
      let n: number | null;
      try {
        n = await conn.read(slab.subarray(off));
      } catch (error) {
        if (this.state !== "closed") {
          this.fail(`lost the connection to master ${this.address}: ${message(error)}`);
        }
        return;
      }
      if (n === null) {
        this.fail(`master ${this.address} closed the connection`);
        return;
      }
      if (this.state === "closed" || this.state === "failed") return;
      this.#route(slab.subarray(off, off + n));
      off += n;
    }
  }

  /** Hands the replies in `chunk` to the clients owed them, in queue order. */
  #route(chunk: Uint8Array): void {
    const k = this.#scanner.scan(chunk, 0, chunk.length, REPLY_ENDS);
    let runClient: Client | null = null;
    let runStart = 0;
    let runEnd = 0;
    let pos = 0;
    for (let i = 0; i <= k; i++) {
      const complete = i < k;
      const end = complete ? REPLY_ENDS[i]! : chunk.length;
      if (end === pos) break;
      const entry = this.#entries[this.#head];
      if (entry === undefined) {
        this.fail(`master ${this.address} sent a reply nobody asked for`);
        return;
      }
      const client = entry.client;
      if (client === null) {
        this.#carry.push(chunk.subarray(pos, end));
        if (complete) {
          const reply = concat(this.#carry);
          this.#carry = [];
          entry.count--;
          this.#advance(entry);
          entry.onReply!(reply);
          if (this.state === "failed" || this.state === "closed") return;
        }
      } else {
        if (runClient === client && runEnd === pos) {
          runEnd = end;
        } else {
          if (runClient !== null) runClient.send(chunk.subarray(runStart, runEnd));
          runClient = client;
          runStart = pos;
          runEnd = end;
        }
        if (complete) {
          entry.count--;
          client.outstanding--;
          if (entry.count === 0) {
            if (runClient !== null) runClient.send(chunk.subarray(runStart, runEnd));
            runClient = null;
            this.#advance(entry);
          }
          if (client.outstanding === 0) client.release();
        }
      }
      pos = end;
    }
    if (runClient !== null) runClient.send(chunk.subarray(runStart, runEnd));
  }

  /** Moves past a finished entry and delivers the local replies that follow it. */
  #advance(entry: Entry): void {
    if (entry.count > 0) return;
    const entries = this.#entries;
    this.#head++;
    while (this.#head < entries.length) {
      const next = entries[this.#head]!;
      if (next.local === undefined) break;
      this.#head++;
      const c = next.client!;
      c.outstanding--;
      c.send(next.local);
      if (c.outstanding === 0) c.release();
    }
    if (this.#head > 1024 && this.#head * 2 > entries.length) {
      this.#entries = entries.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Gives up on this master: every bound client is disconnected. */
  fail(reason: string): void {
    if (this.state === "failed" || this.state === "closed") return;
    this.state = "failed";
    this.reason = reason;
    this.#shutdown();
    this.#proxy.backendFailed(this);
  }

  /** Closes the shared connection and every bound client. */
  close(reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.reason = reason;
    this.#shutdown();
  }

  #shutdown(): void {
    if (this.#roleTimer !== undefined) clearInterval(this.#roleTimer);
    safeClose(this.#conn);
    for (const c of [...this.clients]) c.close();
    this.clients.clear();
    this.#entries = [];
    this.#head = 0;
  }
}

function lineOf(reply: Uint8Array): string {
  const text = new TextDecoder().decode(reply.subarray(0, 200));
  return text.split("\r\n")[0] ?? "";
}

/** The role named by a ROLE reply (`master`, `slave`, `sentinel`), or the error line. */
function roleOf(reply: Uint8Array): string {
  const text = new TextDecoder().decode(reply.subarray(0, 64));
  const m = /^\*\d+\r\n\$\d+\r\n([a-z]+)\r\n/.exec(text);
  return m ? m[1]! : `node answering ${JSON.stringify(lineOf(reply))}`;
}

async function connectWithin(
  hostname: string,
  port: number,
  timeoutMs: number,
): Promise<Deno.TcpConn> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const attempt = Deno.connect({ hostname, port });
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const conn = await Promise.race([attempt, timeout]);
    conn.setNoDelay(true);
    return conn;
  } catch (error) {
    attempt.then((c) => safeClose(c), () => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Whether a proxy following `current` takes `next`: not when both carry an
 * epoch and `next`'s is older. `null` (no master) is always taken.
 */
export function takesMaster(current: MasterAddress | null, next: MasterAddress | null): boolean {
  return next === null || current === null || next.epoch === undefined ||
    current.epoch === undefined || next.epoch >= current.epoch;
}

/**
 * A RESP-aware proxy in front of the master of one Redis instance. Tell it
 * the master with {@linkcode RedisProxy.setMaster}; it follows changes with no
 * restart, closing the client connections bound to the previous master.
 */
export class RedisProxy {
  readonly #listener: Deno.TcpListener;
  readonly #name: string;
  readonly #waitMs: number;
  readonly #password: string | undefined;
  readonly #retryMs: number;
  readonly #log: (line: string) => void;
  readonly #backendOpts: BackendOptions;
  #master: MasterAddress | null = null;
  #backend: Backend | null = null;
  #reason = "no master known yet";
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #waiting = new Set<Client>();
  readonly #clients = new Set<Client>();
  #switches = 0;
  #closed = false;
  readonly #serving: Promise<void>;

  /** Starts listening; throws when the address cannot be bound or an option is invalid. */
  constructor(options: ProxyOptions = {}) {
    const positive = (field: keyof ProxyOptions, value: number | undefined, dflt: number) => {
      const v = value ?? dflt;
      if (!Number.isFinite(v) || v < 0) {
        throw new RangeError(`Cannot start proxy: invalid ${field} ${JSON.stringify(value)}`);
      }
      return v;
    };
    this.#name = options.name ?? "redis";
    this.#waitMs = positive("waitMs", options.waitMs, 2000);
    this.#retryMs = positive("retryMs", options.retryMs, 200);
    this.#password = options.password;
    this.#log = options.log ?? (() => {});
    this.#backendOpts = {
      connectTimeoutMs: positive("connectTimeoutMs", options.connectTimeoutMs, 1000),
      roleCheckMs: positive("roleCheckMs", options.roleCheckMs, 1000),
      password: options.password,
    };
    const port = options.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new RangeError(`Cannot start proxy: invalid port ${JSON.stringify(options.port)}`);
    }
    const listen = { hostname: options.hostname ?? "0.0.0.0", port };
    // SO_REUSEPORT lets several threads listen on one port (needs --unstable-net).
    this.#listener = Deno.listen(
      options.reusePort ? { ...listen, reusePort: true } as Deno.TcpListenOptions : listen,
    );
    this.#serving = this.#accept();
  }

  /** The address the proxy listens on. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr;
  }

  /**
   * Settles once the proxy stops accepting connections: after
   * {@linkcode RedisProxy.close}, or when the listener fails on its own
   * (then {@linkcode RedisProxy.closed} is still false).
   */
  get serving(): Promise<void> {
    return this.#serving;
  }

  /** Whether {@linkcode RedisProxy.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The master followed, if any. */
  get master(): MasterAddress | null {
    return this.#master;
  }

  /**
   * Follows `master` from now on. An update with an older epoch than the
   * current one is ignored (returns false). A new address closes at once the
   * client connections bound to the previous one; `null` makes new
   * connections wait (existing ones stay).
   */
  setMaster(master: MasterAddress | null): boolean {
    if (this.#closed) return false;
    const current = this.#master;
    if (master === null) {
      // Bound clients keep their connections; new ones wait.
      this.#reason = "the instance has no master right now";
      this.#master = null;
      return true;
    }
    if (!takesMaster(current, master)) return false;
    const same = this.#backend !== null && this.#backend.host === master.host &&
      this.#backend.port === master.port;
    this.#master = { ...master };
    if (same && this.#backend!.state !== "failed") {
      if (this.#backend!.state === "ready") this.#admitWaiting();
      return true;
    }
    this.#switches++;
    if (this.#backend) {
      this.#log(`Proxy ${this.#name}: master is now ${master.host}:${master.port}`);
      this.#backend.close(`master moved to ${master.host}:${master.port}`);
    }
    this.#connect();
    return true;
  }

  /** Counters for tests, logs and benchmarks. */
  stats(): ProxyStats {
    let pinned = 0;
    for (const c of this.#clients) if (c.pinned) pinned++;
    return {
      clients: this.#clients.size,
      waiting: this.#waiting.size,
      pinned,
      master: this.#master && { ...this.#master },
      ready: this.#backend?.state === "ready" && this.#master !== null,
      reason: this.#backend?.state === "ready" ? "" : this.#reason,
      switches: this.#switches,
    };
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    this.#backend?.close("proxy closed");
    for (const c of [...this.#clients]) c.close();
    await this.#serving;
  }

  #connect(): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const m = this.#master;
    if (m === null || this.#closed) return;
    const backend = new Backend(this, m.host, m.port, this.#backendOpts);
    this.#backend = backend;
    backend.start();
  }

  /** Called by a backend whose master answered ROLE master. */
  backendReady(backend: Backend): void {
    if (backend !== this.#backend) return;
    this.#log(`Proxy ${this.#name}: serving master ${backend.address}`);
    if (this.#master !== null) this.#admitWaiting();
  }

  /** Called by a backend that gave up; tries again later while it is the one followed. */
  backendFailed(backend: Backend): void {
    if (backend !== this.#backend) return;
    this.#reason = backend.reason;
    this.#log(`Proxy ${this.#name}: ${backend.reason}`);
    if (this.#closed) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      if (this.#backend === backend) this.#connect();
    }, this.#retryMs);
  }

  #admitWaiting(): void {
    for (const c of [...this.#waiting]) this.#bind(c);
  }

  async #accept(): Promise<void> {
    while (true) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (!this.#closed) this.#log(`Proxy ${this.#name}: stopped accepting: ${message(error)}`);
        return;
      }
      if (this.#closed) {
        safeClose(conn);
        return;
      }
      try {
        conn.setNoDelay(true);
      } catch {
        safeClose(conn);
        continue;
      }
      const c = new Client(conn, this.#password);
      this.#clients.add(c);
      if (this.#backend?.state === "ready" && this.#master !== null) {
        this.#bind(c);
      } else {
        this.#waiting.add(c);
        c.waitTimer = setTimeout(() => this.#giveUp(c), this.#waitMs);
      }
    }
  }

  #giveUp(c: Client): void {
    if (!this.#waiting.delete(c)) return;
    c.waitTimer = undefined;
    const reason = this.#master === null && this.#backend?.state !== "failed"
      ? this.#reason
      : (this.#backend?.reason || this.#reason);
    c.send(encoder.encode(
      `-ERR Proxy for "${this.#name}" has no usable master after ${this.#waitMs} ms: ${
        reason.replace(/[\r\n]+/g, " ")
      }\r\n`,
    ));
    c.closeSoon();
    this.#clients.delete(c);
  }

  #bind(c: Client): void {
    this.#waiting.delete(c);
    if (c.waitTimer !== undefined) clearTimeout(c.waitTimer);
    c.waitTimer = undefined;
    const backend = this.#backend!;
    c.backend = backend;
    backend.clients.add(c);
    this.#serve(c, backend);
  }

  async #serve(c: Client, backend: Backend): Promise<void> {
    const buf = new Uint8Array(READ_SIZE);
    try {
      while (!c.closed) {
        let n: number | null;
        try {
          n = await c.conn.read(buf);
        } catch {
          n = null;
        }
        if (n === null || c.closed) break;
        if (c.pinned) {
          await this.#pipeToDedicated(c, buf.subarray(0, n));
        } else {
          this.#requests(c, backend, buf.subarray(0, n));
          if (c.quitting) return; // closed once its replies are written
        }
      }
      c.close();
    } finally {
      this.#clients.delete(c);
    }
  }

  /** Handles bytes from a client on the shared path. */
  #requests(c: Client, backend: Backend, chunk: Uint8Array): void {
    let data: Uint8Array;
    let from: number;
    if (c.pendingLen > 0) {
      const need = c.pendingLen + chunk.length;
      if (need > c.pending.length) {
        const bigger = new Uint8Array(Math.max(need, c.pending.length * 2));
        bigger.set(c.pending.subarray(0, c.pendingLen));
        c.pending = bigger;
      }
      c.pending.set(chunk, c.pendingLen);
      from = c.pendingLen;
      c.pendingLen = need;
      data = c.pending;
    } else {
      data = chunk;
      from = 0;
    }
    const len = data === chunk ? chunk.length : c.pendingLen;
    const k = c.scanner.scan(data, from, len, ENDS, KINDS);
    let runStart = 0;
    let runCount = 0;
    let done = 0; // end of the last complete command handled
    for (let i = 0; i < k; i++) {
      const kind = KINDS[i]!;
      if (kind === KIND_SHARED && c.authed) {
        runCount++;
        done = ENDS[i]!;
        continue;
      }
      const cmdStart = done;
      if (runCount > 0) {
        backend.forward(c, data, runStart, cmdStart, runCount);
        runCount = 0;
      }
      if (kind === KIND_PIN || kind === KIND_RAW) {
        if (!c.authed) {
          backend.local(c, NOAUTH);
          if (kind === KIND_RAW) {
            this.#quit(c);
            return;
          }
        } else {
          this.#pin(c, backend, data.slice(cmdStart, len));
          c.pendingLen = 0;
          return;
        }
      } else if (kind === KIND_AUTH) {
        const args = decodeArgs(data.subarray(cmdStart, ENDS[i]!));
        const user = args.length === 3 ? args[1] : "default";
        const pass = args[args.length - 1];
        if (args.length < 2 || args.length > 3) {
          backend.local(
            c,
            encoder.encode("-ERR wrong number of arguments for 'auth' command\r\n"),
          );
        } else if (user === "default" && pass === this.#password) {
          c.authed = true;
          backend.local(c, OK);
        } else {
          backend.local(c, WRONGPASS);
        }
      } else if (kind === KIND_QUIT) {
        backend.local(c, OK);
        this.#quit(c);
        return;
      } else {
        backend.local(c, NOAUTH); // a shared command before AUTH
      }
      done = ENDS[i]!;
      runStart = done;
    }
    if (runCount > 0) backend.forward(c, data, runStart, done, runCount);
    const tail = len - done;
    if (data === chunk) {
      if (tail > 0) {
        if (c.pending.length < tail) c.pending = new Uint8Array(Math.max(tail, 4096));
        c.pending.set(chunk.subarray(done));
      }
    } else if (tail > 0 && done > 0) {
      c.pending.copyWithin(0, done, len);
    }
    c.pendingLen = tail;
  }

  /** Stops reading the client and closes it once every reply owed to it is written. */
  #quit(c: Client): void {
    c.pendingLen = 0;
    c.quitting = true;
    c.release();
  }

  /** Gives the client a server connection of its own; `first` is sent on it first. */
  #pin(c: Client, backend: Backend, first: Uint8Array): void {
    c.pinned = true;
    c.dedicatedReady = this.#openDedicated(c, backend, first);
  }

  async #openDedicated(c: Client, backend: Backend, first: Uint8Array): Promise<boolean> {
    let conn: Deno.TcpConn;
    try {
      conn = await connectWithin(backend.host, backend.port, this.#backendOpts.connectTimeoutMs);
    } catch {
      c.close();
      return false;
    }
    if (c.closed) {
      safeClose(conn);
      return false;
    }
    c.dedicated = conn;
    const skip = this.#password !== undefined ? 1 : 0;
    this.#pipeFromDedicated(c, conn, skip);
    try {
      if (skip) await writeAll(conn, encodeCommand(["AUTH", this.#password!]));
      await writeAll(conn, first);
    } catch {
      c.close();
      return false;
    }
    return true;
  }

  async #pipeToDedicated(c: Client, bytes: Uint8Array): Promise<void> {
    if (!(await c.dedicatedReady)) return;
    try {
      await writeAll(c.dedicated!, bytes);
    } catch {
      c.close();
    }
  }

  /** Copies replies of the client's own connection to it; skips `skip` replies first. */
  async #pipeFromDedicated(c: Client, conn: Deno.TcpConn, skip: number): Promise<void> {
    const scanner = skip > 0 ? new ReplyScanner() : null;
    const ends: number[] = [];
    while (!c.closed) {
      const buf = new Uint8Array(READ_SIZE * 4);
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch {
        n = null;
      }
      if (n === null) break;
      let chunk = buf.subarray(0, n);
      if (skip > 0 && scanner) {
        // The reply to the proxy's own AUTH comes first (it fits one read).
        const k = scanner.scan(chunk, 0, n, ends);
        if (k === 0) continue;
        if (chunk[0] !== 43) {
          c.send(encoder.encode(`-ERR Proxy could not authenticate to the master\r\n`));
          break;
        }
        skip = 0;
        chunk = chunk.subarray(ends[0]!);
        if (chunk.length === 0) continue;
      }
      if (c.outstanding > 0 || c.held.length > 0) {
        c.held.push(chunk);
        c.release();
      } else {
        c.send(chunk);
      }
    }
    c.closeSoon();
  }
}
