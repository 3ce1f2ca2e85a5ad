/**
 * Text output of `mrr`: the original status screen, the instance table and
 * progress while waiting.
 *
 * @module
 */

import type { InstanceStatus, ProcessStatus } from "./client.ts";

/** Shown in place of an address when a process has none yet (no master elected, not started). */
export const NO_ADDRESS = "-";

/** True when `p` describes a process with an address, i.e. one that is up. */
export function isUp(p: ProcessStatus | null | undefined): boolean {
  return typeof p === "object" && p !== null && !!p.IP && p.Port !== undefined &&
    p.Port !== null && String(p.Port) !== "" && String(p.Port) !== "0";
}

/** `IP:Port`, or {@linkcode NO_ADDRESS} when the process has no address yet. */
export function address(p: ProcessStatus | null | undefined): string {
  return isUp(p) ? `${p!.IP}:${p!.Port}` : NO_ADDRESS;
}

function slavesOf(instance: InstanceStatus): ProcessStatus[] {
  return Array.isArray(instance.Slaves) ? instance.Slaves : [];
}

/** Every slave: of all shards for a Redis Cluster. */
function allSlavesOf(instance: InstanceStatus): ProcessStatus[] {
  if (!Array.isArray(instance.Shards)) return slavesOf(instance);
  return instance.Shards.flatMap((s) => (Array.isArray(s.Slaves) ? s.Slaves : []));
}

/**
 * The status of one instance in the original `mrr status -n` format:
 *
 * ```
 * Status = RUNNING
 * Type = MS
 * Capacity = 200
 * Master = 10.11.12.123:6382
 * \tSlave0 = 10.11.12.121:6381
 * ```
 *
 * A Redis Cluster lists its shards in the same style instead of one master:
 *
 * ```
 * Shard0 = 0-5460
 * \tMaster = 10.11.12.123:6382
 * \tSlave0 = 10.11.12.121:6381
 * ```
 *
 * A missing master (or a slave with no address yet) shows as `-`. The
 * running proxy endpoints follow as `Proxy0 = 10.11.12.124:31005`, ... When
 * the scheduler gives a non-empty `Reason`, a line `Reason = ...` follows, and
 * `Update = ...` while a change (UPDATE) runs.
 * Returns the lines without a trailing newline.
 */
export function formatStatus(instance: InstanceStatus): string {
  const lines = [
    `Status = ${instance.Status}`,
    `Type = ${instance.Type ?? ""}`,
    `Capacity = ${instance.Capacity ?? ""}`,
  ];
  if (Array.isArray(instance.Shards)) {
    instance.Shards.forEach((shard, k) => {
      lines.push(`Shard${k} = ${shard.Slots}`, `\tMaster = ${address(shard.Master)}`);
      const slaves = Array.isArray(shard.Slaves) ? shard.Slaves : [];
      slaves.forEach((slave, i) => lines.push(`\tSlave${i} = ${address(slave)}`));
    });
  } else {
    lines.push(
      `Master = ${address(instance.Master)}`,
      ...slavesOf(instance).map((slave, i) => `\tSlave${i} = ${address(slave)}`),
    );
  }
  (Array.isArray(instance.Proxies) ? instance.Proxies : []).forEach((proxy, i) =>
    lines.push(`Proxy${i} = ${address(proxy)}`)
  );
  if (typeof instance.Reason === "string" && instance.Reason.trim() !== "") {
    lines.push(`Reason = ${instance.Reason.trim()}`);
  }
  const update = instance.Update as
    | { Target?: Record<string, unknown>; Phase?: unknown }
    | null
    | undefined;
  if (update && typeof update.Phase === "string") {
    const t = update.Target ?? {};
    lines.push(
      `Update = to ${t.Capacity} MB, ${t.Slaves} slave(s), Distribution ${t.Distribution}: ${update.Phase}`,
    );
  }
  return lines.join("\n");
}

/**
 * A table of instances sorted by name, columns separated by at least two
 * spaces: NAME TYPE STATUS CAPACITY MASTER SLAVES. CAPACITY is in MB; SLAVES
 * counts the slave entries the scheduler lists (of every shard of a Redis
 * Cluster, whose MASTER is the first shard's).
 */
export function formatTable(instances: InstanceStatus[]): string {
  const header = ["NAME", "TYPE", "STATUS", "CAPACITY", "MASTER", "SLAVES"];
  const rows = [...instances]
    .sort((a, b) => a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0)
    .map((i) => [
      i.Name,
      String(i.Type ?? ""),
      i.Status,
      String(i.Capacity ?? ""),
      address(i.Master),
      String(allSlavesOf(i).length),
    ]);
  const all = [header, ...rows];
  const widths = header.map((_, col) => Math.max(...all.map((row) => row[col]!.length)));
  return all
    .map((row) => row.map((cell, col) => col < row.length - 1 ? cell.padEnd(widths[col]!) : cell))
    .map((row) => row.join("  "))
    .join("\n");
}

/** How many processes of an instance are up, of how many wanted. */
export interface ProcessCount {
  /** Processes up. */
  running: number;
  /** Processes wanted. */
  total: number;
}

/**
 * Counts processes: the scheduler's `ProcessesRunning`/`ProcessesTotal` when
 * it sends them, else the master and slave entries that have an address, of
 * `1 + expectedSlaves` (or `1 + ` the listed slaves when not given).
 */
export function countProcesses(instance: InstanceStatus, expectedSlaves?: number): ProcessCount {
  const { ProcessesRunning: running, ProcessesTotal: total } = instance;
  if (typeof running === "number" && typeof total === "number" && total > 0) {
    return { running, total };
  }
  const slaves = slavesOf(instance);
  const up = (isUp(instance.Master) ? 1 : 0) + slaves.filter(isUp).length;
  const wanted = 1 + Math.max(expectedSlaves ?? slaves.length, 0);
  return { running: up, total: Math.max(wanted, up) };
}

/** One plain progress line: `CREATING: 1 of 3 processes running`. */
export function progressLine(status: string, count: ProcessCount): string {
  return `${status}: ${count.running} of ${count.total} processes running`;
}

/** A progress bar for a terminal: `[#######-------------] 1/3 processes running (CREATING)`. */
export function progressBar(status: string, count: ProcessCount, width = 20): string {
  const fraction = count.total > 0 ? Math.min(count.running / count.total, 1) : 0;
  const filled = Math.round(fraction * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${count.running}/${count.total} ` +
    `processes running (${status})`;
}

/**
 * `text` cut to fit in `columns` terminal columns without wrapping: at most
 * `columns - 1` characters (a character in the last column makes some
 * terminals wrap), the cut marked with `...`. Unchanged when `columns` is
 * unknown.
 */
export function fitWidth(text: string, columns: number | undefined): string {
  if (columns === undefined || !Number.isFinite(columns) || columns < 1) return text;
  const chars = [...text];
  const room = Math.max(1, Math.floor(columns) - 1);
  if (chars.length <= room) return text;
  if (room <= 3) return chars.slice(0, room).join("");
  return `${chars.slice(0, room - 3).join("")}...`;
}
