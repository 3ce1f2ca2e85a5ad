/**
 * Parsing of the text `INFO` answers with, and the {@linkcode RedisStats} the
 * executor reports from it.
 *
 * @module
 */

import type { RedisStats } from "../executor_messages.ts";

/** The fields of `INFO` that mr-redis uses, typed, plus every field as text. */
export interface RedisInfo {
  /** `redis_version`. */
  version: string;
  /** `role`. */
  role: "master" | "slave";
  /** `used_memory` in bytes. */
  usedMemory: number;
  /** `maxmemory` in bytes (0 means no limit). */
  maxMemory: number;
  /** `maxmemory_policy`. */
  maxMemoryPolicy: string;
  /** `uptime_in_seconds`. */
  uptime: number;
  /** `connected_clients`. */
  connectedClients: number;
  /** `connected_slaves`. */
  connectedSlaves: number;
  /** `instantaneous_ops_per_sec` (0 when INFO had no `stats` section). */
  opsPerSec: number;
  /** `master_repl_offset`. */
  masterReplOffset: number;
  /** `slave_repl_offset` (slave only, else 0). */
  slaveReplOffset: number;
  /** `master_host` (slave only). */
  masterHost?: string;
  /** `master_port` (slave only). */
  masterPort?: number;
  /** `master_link_status` is `up` (slave only, else false). */
  masterLinkUp: boolean;
  /** `master_sync_in_progress` is 1 (slave only, else false). */
  syncInProgress: boolean;
  /** `master_last_io_seconds_ago` (slave only; -1 when never, 0 for a master). */
  masterLastIoSeconds: number;
  /** `loading` is 1: the dataset is still being read from disk. */
  loading: boolean;
  /**
   * Master: the replicas it counts for `min-replicas-to-write`
   * (`min_slaves_good_slaves` when that is set, else the `slaveN` lines whose
   * state is `online`); 0 for a slave.
   */
  goodSlaves: number;
  /** Master: its `slaveN` lines, in order; empty for a slave. */
  slaves: SlaveLink[];
  /** `sync_full`: full syncs this server served (0 when INFO had no `stats` section). */
  fullSyncs: number;
  /** Every `key:value` line of the answer. */
  fields: Record<string, string>;
}

/** One `slaveN` line of a master's INFO. */
export interface SlaveLink {
  /** `ip:port` the slave announced. */
  addr: string;
  /** `state=online`: past its initial sync. */
  online: boolean;
  /** `offset`: the replication offset the slave last acknowledged (0 before its first ACK). */
  offset: number;
}

function slaveLink(value: string): SlaveLink {
  let ip = "", port = "", state = "", offset = "0";
  for (const part of value.split(",")) {
    const eq = part.indexOf("=");
    const key = part.slice(0, eq);
    const v = part.slice(eq + 1);
    if (key === "ip") ip = v;
    else if (key === "port") port = v;
    else if (key === "state") state = v;
    else if (key === "offset") offset = v;
  }
  return { addr: `${ip}:${port}`, online: state === "online", offset: num(offset) };
}

/** Splits INFO text into its `key:value` fields (section headers and blanks skipped). */
export function parseInfoFields(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    if (line === "" || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    fields[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return fields;
}

function num(value: string | undefined, fallback = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  return Number.isFinite(n) ? n : fallback;
}

/** The fields {@linkcode parseInfo} reads (the `slaveN` lines aside). */
const WANTED = new Set([
  "redis_version",
  "role",
  "used_memory",
  "maxmemory",
  "maxmemory_policy",
  "uptime_in_seconds",
  "connected_clients",
  "connected_slaves",
  "instantaneous_ops_per_sec",
  "master_repl_offset",
  "slave_repl_offset",
  "master_host",
  "master_port",
  "master_link_status",
  "master_sync_in_progress",
  "master_last_io_seconds_ago",
  "loading",
  "min_slaves_good_slaves",
  "sync_full",
]);

/**
 * Parses the text of `INFO` (all sections, or at least `server`, `clients`,
 * `memory`, `persistence` and `replication`); throws a `TypeError` when the text
 * carries no `role` field.
 *
 * One pass that keeps only the fields it reads: the executor parses an
 * answer of about 150 fields for every check of every process (twice a
 * second each), and building the whole map cost more than the round trip.
 * {@linkcode RedisInfo.fields} is built from the text when first read.
 */
export function parseInfo(text: string): RedisInfo {
  const got: Record<string, string> = {};
  const slaves: SlaveLink[] = [];
  for (let at = 0; at < text.length;) {
    let end = text.indexOf("\n", at);
    if (end === -1) end = text.length;
    const stop = end > at && text.charCodeAt(end - 1) === 13 ? end - 1 : end;
    const colon = text.indexOf(":", at);
    if (colon > at && colon < stop && text.charCodeAt(at) !== 35 /* # */) {
      const key = text.slice(at, colon);
      if (WANTED.has(key)) got[key] = text.slice(colon + 1, stop);
      else if (
        key.startsWith("slave") && key.length > 5 && key.charCodeAt(5) >= 48 &&
        key.charCodeAt(5) <= 57 && /^slave\d+$/.test(key)
      ) slaves.push(slaveLink(text.slice(colon + 1, stop)));
    }
    at = end + 1;
  }
  const role = got.role;
  if (role !== "master" && role !== "slave") {
    throw new TypeError(
      `Cannot parse INFO: expected "role:master" or "role:slave", but got ${
        role === undefined ? "no role field" : `"role:${role}"`
      }`,
    );
  }
  const slave = role === "slave";
  let fields: Record<string, string> | undefined;
  const info: RedisInfo = {
    version: got.redis_version ?? "",
    role,
    usedMemory: num(got.used_memory),
    maxMemory: num(got.maxmemory),
    maxMemoryPolicy: got.maxmemory_policy ?? "",
    uptime: num(got.uptime_in_seconds),
    connectedClients: num(got.connected_clients),
    connectedSlaves: num(got.connected_slaves),
    opsPerSec: num(got.instantaneous_ops_per_sec),
    masterReplOffset: num(got.master_repl_offset),
    slaveReplOffset: slave ? num(got.slave_repl_offset) : 0,
    masterLinkUp: slave && got.master_link_status === "up",
    syncInProgress: slave && got.master_sync_in_progress === "1",
    masterLastIoSeconds: slave ? num(got.master_last_io_seconds_ago, -1) : 0,
    loading: got.loading === "1",
    // Without min-replicas-to-write, INFO has no min_slaves_good_slaves: online ones count.
    goodSlaves: slave
      ? 0
      : got.min_slaves_good_slaves !== undefined
      ? num(got.min_slaves_good_slaves)
      : slaves.filter((s) => s.online).length,
    slaves: slave ? [] : slaves,
    fullSyncs: num(got.sync_full),
    get fields() {
      return fields ??= parseInfoFields(text);
    },
  };
  if (slave && got.master_host !== undefined) info.masterHost = got.master_host;
  if (slave && got.master_port !== undefined) info.masterPort = num(got.master_port);
  return info;
}

/**
 * Counts the slaves of a master that take its replication stream, from its
 * successive INFO answers; one per master, fed every answer in turn.
 *
 * A slave fresh from a full sync is `online` in its master's INFO, and
 * counted for `min-replicas-to-write`, up to a second before the master
 * sends it anything: after a transfer straight to the socket, redis waits
 * for the slave's first `REPLCONF ACK` to start the stream, and an ACK that
 * arrives before the master has reaped its fork does not count (measured
 * with redis 7.0: 2 of 6 joins under writes waited ~1 s). Writes in that
 * second reach the older slaves only, so retiring those then, and losing
 * the master, loses writes a client had acknowledged. A slave counts as
 * streaming once its acknowledged offset has moved past the first one seen
 * here (it acknowledged something the master sent after), or when it has
 * acknowledged everything the master has (no write it lacks). A full sync
 * served since the previous answer (`sync_full` moved) starts every slave
 * over: a slave may have synced again between two answers, unseen.
 */
export class StreamingSlaves {
  /** `addr` → the first acknowledged offset seen while it was online. */
  readonly #first = new Map<string, number>();
  #count = 0;
  #fullSyncs: number | undefined;

  /** The count of the latest answer given to {@linkcode StreamingSlaves.update}. */
  get count(): number {
    return this.#count;
  }

  /** Takes a master's answer; returns how many of its slaves stream. */
  update(info: RedisInfo): number {
    if (this.#fullSyncs !== undefined && info.fullSyncs !== this.#fullSyncs) this.#first.clear();
    this.#fullSyncs = info.fullSyncs;
    const seen = new Set<string>();
    let count = 0;
    for (const s of info.slaves) {
      // Not online, or no ACK yet (with something to have): starts over (a
      // slave syncing again has a new first offset).
      if (!s.online || (s.offset <= 0 && info.masterReplOffset > 0)) continue;
      seen.add(s.addr);
      const first = this.#first.get(s.addr);
      if (first === undefined || s.offset < first) this.#first.set(s.addr, s.offset);
      if (s.offset >= info.masterReplOffset || (first !== undefined && s.offset > first)) count++;
    }
    for (const addr of this.#first.keys()) if (!seen.has(addr)) this.#first.delete(addr);
    return this.#count = count;
  }
}

/**
 * True when the process can serve as what it is: a master that finished
 * loading its data, or a slave whose link to its master is up with no sync in
 * progress.
 */
export function isInSync(info: RedisInfo): boolean {
  if (info.loading) return false;
  if (info.role === "master") return true;
  return info.masterLinkUp && !info.syncInProgress;
}

/** The {@linkcode RedisStats} of one task, from its parsed INFO. */
export function statsFromInfo(taskId: string, info: RedisInfo): RedisStats {
  const slave = info.role === "slave";
  return {
    taskId,
    role: info.role,
    memoryUsed: info.usedMemory,
    maxMemory: info.maxMemory,
    uptime: info.uptime,
    clients: info.connectedClients,
    opsPerSec: info.opsPerSec,
    replOffset: slave ? info.slaveReplOffset : info.masterReplOffset,
    inSync: slave ? isInSync(info) : !info.loading,
    lastIoSeconds: slave ? info.masterLastIoSeconds : 0,
    connectedSlaves: info.connectedSlaves,
    goodSlaves: slave ? 0 : info.goodSlaves,
  };
}
