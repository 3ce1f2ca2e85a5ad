/**
 * Finding the leading Mesos master: parsing the `Master` setting
 * (`host:port`, a comma-separated list, `http://host:port`,
 * `master@host:port`, `file:///path`, `zk://h1:p,h2:p/mesos`) and watching
 * ZooKeeper for the leader (the `json.info_NNNNNNNNNN` child with the
 * smallest sequence number).
 *
 * @module
 */

import type { MasterInfo } from "./types.ts";

/** Where to look for the masters. */
export type MasterSpec =
  | { kind: "urls"; /** Base URLs, e.g. `http://10.0.0.5:5050`. */ urls: string[] }
  | {
    kind: "zk";
    /** ZooKeeper connect string, `h1:p,h2:p`. */
    servers: string;
    /** Znode path of the masters' group, e.g. `/mesos`. */
    path: string;
    /** `user:password` for ZooKeeper digest auth, if given. */
    auth?: string;
  };

/**
 * Parses a `Master` setting. Throws a `TypeError` naming the value when it
 * cannot be used.
 */
export function parseMasterSpec(master: string): MasterSpec {
  const text = master.trim();
  if (text.startsWith("file://")) {
    const content = Deno.readTextFileSync(new URL(text)).trim();
    if (content.startsWith("file://")) {
      throw new TypeError(`Master file "${text}" points at another file`);
    }
    return parseMasterSpec(content);
  }
  if (text.startsWith("zk://")) {
    const rest = text.slice("zk://".length);
    const slash = rest.indexOf("/");
    if (slash === -1 || slash === rest.length - 1) {
      throw new TypeError(`Invalid master "${master}": a zk:// URL needs a znode path like /mesos`);
    }
    let servers = rest.slice(0, slash);
    const path = rest.slice(slash).replace(/\/+$/, "");
    let auth: string | undefined;
    const at = servers.lastIndexOf("@");
    if (at !== -1) {
      auth = servers.slice(0, at);
      servers = servers.slice(at + 1);
    }
    if (!servers || servers.split(",").some((s) => !/^[^\s:,]+:\d+$/.test(s))) {
      throw new TypeError(`Invalid master "${master}": expected zk://host:port[,host:port]/path`);
    }
    return auth === undefined ? { kind: "zk", servers, path } : { kind: "zk", servers, path, auth };
  }
  const urls = text.split(",").map((item) => item.trim()).filter((item) => item !== "").map(
    (item) => {
      let hostPort = item.replace(/^master@/, "");
      if (/^https?:\/\//.test(hostPort)) {
        const url = new URL(hostPort);
        return `${url.protocol}//${url.host}`;
      }
      hostPort = hostPort.replace(/\/+$/, "");
      if (!/^(\[[0-9a-fA-F:.]+\]|[^\s:/]+)(:\d+)?$/.test(hostPort)) {
        throw new TypeError(
          `Invalid master "${master}": "${item}" is not host:port, http://host:port or zk://...`,
        );
      }
      return `http://${/:\d+$/.test(hostPort) ? hostPort : `${hostPort}:5050`}`;
    },
  );
  if (urls.length === 0) throw new TypeError(`Invalid master "${master}": it is empty`);
  return { kind: "urls", urls };
}

/** The leader as found in ZooKeeper. */
export interface DetectedLeader {
  /** Base URL of the leader, e.g. `http://127.0.0.1:5050`. */
  url: string;
  /** Name of its znode, e.g. `json.info_0000000003`. */
  node: string;
  /** The MasterInfo JSON stored in the znode. */
  info: Partial<MasterInfo>;
}

/**
 * Base URL of a master from its MasterInfo JSON: `address.ip` (or
 * `address.hostname`) and `address.port`, else the `pid`
 * (`master@ip:port`), else `hostname` and `port`. Throws a `TypeError` when
 * none is usable.
 */
export function masterUrlFromInfo(info: Partial<MasterInfo>): string {
  const address = info.address;
  const host = address?.ip || address?.hostname;
  if (host && address?.port) return `http://${hostForUrl(host)}:${address.port}`;
  const pid = info.pid?.match(/@(.+):(\d+)$/);
  if (pid) return `http://${hostForUrl(pid[1]!)}:${pid[2]}`;
  if (info.hostname && info.port) return `http://${hostForUrl(info.hostname)}:${info.port}`;
  throw new TypeError(`Cannot find an address in MasterInfo ${JSON.stringify(info)}`);
}

function hostForUrl(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

const LEADER_NODE = /^json\.info_(\d+)$/;

/** Picks the leader's node name among a group's children (smallest `json.info_` sequence). */
export function leaderNode(children: string[]): string | undefined {
  let best: string | undefined;
  let bestSeq = Infinity;
  for (const child of children) {
    const match = child.match(LEADER_NODE);
    if (!match) continue;
    const seq = Number(match[1]);
    if (seq < bestSeq) {
      best = child;
      bestSeq = seq;
    }
  }
  return best;
}

/** Options of {@link ZooKeeperDetector}. */
export interface ZooKeeperDetectorOptions {
  /** ZooKeeper connect string, `h1:p,h2:p`. */
  servers: string;
  /** Znode path of the masters' group, e.g. `/mesos`. */
  path: string;
  /** `user:password` for digest auth. */
  auth?: string;
  /** Called whenever the leader changes (`undefined`: no leader right now). */
  onChange?: (leader: DetectedLeader | undefined) => void;
  /** Log sink. */
  log?: (line: string) => void;
  /** ZooKeeper session timeout in ms (default 10000). */
  sessionTimeoutMs?: number;
}

// Minimal typing of the parts of node-zookeeper-client used here.
interface ZkClient {
  connect(): void;
  close(): void;
  on(event: "state", listener: (state: { name: string }) => void): void;
  addAuthInfo(scheme: string, auth: Uint8Array): void;
  getChildren(
    path: string,
    watcher: (event: unknown) => void,
    callback: (error: Error | null, children: string[]) => void,
  ): void;
  getData(path: string, callback: (error: Error | null, data?: Uint8Array) => void): void;
}
interface ZkModule {
  createClient(servers: string, options: Record<string, number>): ZkClient;
  /** node's `Buffer.from`: the client takes auth only as a Buffer. */
  bufferFrom(text: string): Uint8Array;
}

let zkModule: Promise<ZkModule> | undefined;

/**
 * node-zookeeper-client, loaded the first time a detector starts: it costs
 * ~75 ms of CPU to load (with node's Buffer), which a scheduler or local
 * cluster whose masters are plain URLs (the usual case) never needs.
 */
function loadZooKeeper(): Promise<ZkModule> {
  return zkModule ??= Promise.all([import("node-zookeeper-client"), import("node:buffer")])
    .then(([zk, buffer]) => ({
      createClient: (zk.default as unknown as Pick<ZkModule, "createClient">).createClient,
      bufferFrom: (text: string) => buffer.Buffer.from(text),
    }));
}

/**
 * Watches a Mesos masters' group in ZooKeeper and reports the leader.
 * Survives ZooKeeper restarts and session expiry (a new session is made).
 */
export class ZooKeeperDetector {
  #options: ZooKeeperDetectorOptions;
  #zk: ZkModule | undefined;
  #client: ZkClient | undefined;
  #leader: DetectedLeader | undefined;
  #closed = false;
  #generation = 0;
  #waiters: Array<(leader: DetectedLeader) => void> = [];
  /** One watcher function per session, so ZooKeeper registers it once. */
  #watcher: () => void = () => {};
  #retryTimer: ReturnType<typeof setTimeout> | undefined;

  /** Creates a detector; call {@link start} to connect. */
  constructor(options: ZooKeeperDetectorOptions) {
    if (!options.servers) throw new TypeError(`Option "servers" must not be empty`);
    if (!options.path.startsWith("/") || options.path === "/") {
      throw new TypeError(
        `Option "path" must be a znode path like /mesos, but got "${options.path}"`,
      );
    }
    this.#options = options;
  }

  /** The current leader, if known. */
  get leader(): DetectedLeader | undefined {
    return this.#leader;
  }

  /** Connects to ZooKeeper and starts watching (returns at once). */
  start(): void {
    if (this.#closed) throw new Error("Cannot start a closed ZooKeeperDetector");
    loadZooKeeper().then(
      (zk) => {
        this.#zk = zk;
        if (!this.#closed) this.#connect();
      },
      (error) => this.#log(`Cannot load the ZooKeeper client: ${(error as Error).message}`),
    );
  }

  /** Resolves with the leader as soon as one is known. */
  waitForLeader(signal?: AbortSignal): Promise<DetectedLeader> {
    if (this.#leader) return Promise.resolve(this.#leader);
    return new Promise((resolve, reject) => {
      const waiter = (leader: DetectedLeader) => {
        signal?.removeEventListener("abort", onAbort);
        resolve(leader);
      };
      const onAbort = () => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(signal?.reason ?? new Error("Aborted"));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Stops watching and closes the ZooKeeper session. */
  close(): void {
    this.#closed = true;
    this.#generation++;
    clearTimeout(this.#retryTimer);
    this.#client?.close();
    this.#client = undefined;
  }

  #log(line: string): void {
    this.#options.log?.(line);
  }

  #connect(): void {
    const zk = this.#zk!;
    const generation = ++this.#generation;
    this.#client?.close();
    const client = zk.createClient(this.#options.servers, {
      sessionTimeout: this.#options.sessionTimeoutMs ?? 10_000,
      spinDelay: 500,
      retries: 1_000_000,
    });
    this.#client = client;
    this.#watcher = () => this.#refresh(generation);
    if (this.#options.auth) {
      client.addAuthInfo("digest", zk.bufferFrom(this.#options.auth)); // must be a Buffer
    }
    client.on("state", (state) => {
      if (generation !== this.#generation) return;
      if (state.name === "SYNC_CONNECTED") {
        this.#refresh(generation);
      } else if (state.name === "EXPIRED") {
        this.#log(`ZooKeeper session expired at ${this.#options.servers}; reconnecting`);
        this.#connect();
      }
    });
    client.connect();
  }

  #refresh(generation: number): void {
    const client = this.#client;
    if (!client || generation !== this.#generation) return;
    client.getChildren(this.#options.path, this.#watcher, (error, children) => {
      if (generation !== this.#generation) return;
      if (error) {
        // NO_NODE: no master registered yet; retry until the group appears.
        this.#log(`Cannot list ${this.#options.path} in ZooKeeper: ${error.message}`);
        this.#set(undefined);
        clearTimeout(this.#retryTimer);
        this.#retryTimer = setTimeout(() => this.#refresh(generation), 1_000);
        return;
      }
      const node = leaderNode(children);
      if (!node) return this.#set(undefined);
      client.getData(`${this.#options.path}/${node}`, (error, data) => {
        if (generation !== this.#generation) return;
        if (error || !data) {
          // The node vanished between list and get: the children watch fires again.
          this.#log(`Cannot read ${this.#options.path}/${node}: ${error?.message ?? "no data"}`);
          return;
        }
        try {
          const info = JSON.parse(new TextDecoder().decode(data)) as Partial<MasterInfo>;
          this.#set({ url: masterUrlFromInfo(info), node, info });
        } catch (e) {
          this.#log(`Ignoring leader node ${node}: ${(e as Error).message}`);
          this.#set(undefined);
        }
      });
    });
  }

  #set(leader: DetectedLeader | undefined): void {
    const before = this.#leader;
    if (before?.node === leader?.node && before?.url === leader?.url) return;
    this.#leader = leader;
    this.#log(leader ? `Leading master is ${leader.url} (${leader.node})` : "No leading master");
    if (leader) {
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const waiter of waiters) waiter(leader);
    }
    this.#options.onChange?.(leader);
  }
}

/** Result of {@link fetchFollowingRedirects}. */
export interface RedirectedResponse {
  /** The final response (not a redirect). */
  response: Response;
  /** The URL that answered it; send later calls to its origin. */
  url: string;
}

/**
 * POSTs (or sends `init`) to `url`, following up to `maxRedirects` 307/308
 * redirects by hand, re-sending the same method and body. Mesos masters
 * answer 307 with a protocol-relative `Location` (`//host:port/api/v1/scheduler`),
 * resolved against the request URL. Throws a `TypeError` for a redirect
 * without `Location` or too many redirects.
 */
export async function fetchFollowingRedirects(
  url: string,
  init: RequestInit,
  maxRedirects = 5,
): Promise<RedirectedResponse> {
  let current = url;
  for (let hop = 0;; hop++) {
    const response = await fetch(current, { ...init, redirect: "manual" });
    if (![301, 302, 303, 307, 308].includes(response.status)) {
      return { response, url: current };
    }
    const location = response.headers.get("location");
    await response.body?.cancel();
    if (!location) throw new TypeError(`Redirect from ${current} has no Location header`);
    if (hop >= maxRedirects) {
      throw new TypeError(`Too many redirects from ${url} (last to ${location})`);
    }
    current = new URL(location, current).href;
  }
}
