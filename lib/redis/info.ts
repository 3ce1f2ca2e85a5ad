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
  /** Every `key:value` line of the answer. */
  fields: Record<string, string>;
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

function num(fields: Record<string, string>, key: string, fallback = 0): number {
  const value = fields[key];
  if (value === undefined) return fallback;
  const n = Number(value);
  return Number.isFinite(n) ? n : fallback;
}

/**
 * Parses the text of `INFO` (all sections, or at least `server`, `clients`,
 * `memory`, `persistence` and `replication`); throws a `TypeError` when the text
 * carries no `role` field.
 */
export function parseInfo(text: string): RedisInfo {
  const fields = parseInfoFields(text);
  const role = fields.role;
  if (role !== "master" && role !== "slave") {
    throw new TypeError(
      `Cannot parse INFO: expected "role:master" or "role:slave", but got ${
        role === undefined ? "no role field" : `"role:${role}"`
      }`,
    );
  }
  const slave = role === "slave";
  const info: RedisInfo = {
    version: fields.redis_version ?? "",
    role,
    usedMemory: num(fields, "used_memory"),
    maxMemory: num(fields, "maxmemory"),
    maxMemoryPolicy: fields.maxmemory_policy ?? "",
    uptime: num(fields, "uptime_in_seconds"),
    connectedClients: num(fields, "connected_clients"),
    connectedSlaves: num(fields, "connected_slaves"),
    opsPerSec: num(fields, "instantaneous_ops_per_sec"),
    masterReplOffset: num(fields, "master_repl_offset"),
    slaveReplOffset: slave ? num(fields, "slave_repl_offset") : 0,
    masterLinkUp: slave && fields.master_link_status === "up",
    syncInProgress: slave && fields.master_sync_in_progress === "1",
    masterLastIoSeconds: slave ? num(fields, "master_last_io_seconds_ago", -1) : 0,
    loading: fields.loading === "1",
    goodSlaves: slave ? 0 : countGoodSlaves(fields),
    fields,
  };
  if (slave && fields.master_host !== undefined) info.masterHost = fields.master_host;
  if (slave && fields.master_port !== undefined) info.masterPort = num(fields, "master_port");
  return info;
}

function countGoodSlaves(fields: Record<string, string>): number {
  if (fields.min_slaves_good_slaves !== undefined) return num(fields, "min_slaves_good_slaves");
  let online = 0;
  for (const [key, value] of Object.entries(fields)) {
    if (/^slave\d+$/.test(key) && /(^|,)state=online(,|$)/.test(value)) online++;
  }
  return online;
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
