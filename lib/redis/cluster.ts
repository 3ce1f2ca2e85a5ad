/**
 * Redis Cluster pieces shared by the scheduler and the executor: the even
 * split of the 16384 slots, the `redis-server` arguments of a cluster node,
 * the summary of `CLUSTER NODES` / `CLUSTER INFO` that executors report, and
 * the CLUSTER commands the scheduler asks executors to run (always as the
 * internal user: the tenant's `default` user may not change the cluster).
 *
 * @module
 */
import type { RedisClient } from "./client.ts";

/** Number of hash slots of a Redis Cluster. */
export const CLUSTER_SLOTS = 16384;

/** An inclusive range of slots `[first, last]`. */
export type SlotRange = [number, number];

/**
 * The slots of each of `masters` shards, spread evenly the way `redis-cli
 * --cluster create` does (each range ends at the rounded running total): 3
 * masters → `0-5460`, `5461-10922`, `10923-16383`.
 */
export function slotRanges(masters: number): SlotRange[] {
  if (!Number.isInteger(masters) || masters < 1 || masters > CLUSTER_SLOTS) {
    throw new RangeError(`Cannot split the slots: bad number of masters ${masters}`);
  }
  const ranges: SlotRange[] = [];
  const per = CLUSTER_SLOTS / masters;
  let first = 0;
  for (let k = 0; k < masters; k++) {
    const last = k === masters - 1 ? CLUSTER_SLOTS - 1 : Math.round(k * per + per - 1);
    ranges.push([first, last]);
    first = last + 1;
  }
  return ranges;
}

/** `"0-5460"` for a range (one slot: `"7"`). */
export function formatSlotRange([first, last]: SlotRange): string {
  return first === last ? String(first) : `${first}-${last}`;
}

/** Options of {@linkcode clusterServerArgs}. */
export interface ClusterNodeOptions {
  /** Port of the cluster bus (from the offer). */
  busPort: number;
  /** `cluster-node-timeout` in ms. Default {@linkcode DEFAULT_CLUSTER_NODE_TIMEOUT_MS}. */
  nodeTimeoutMs?: number;
}

/**
 * Default `cluster-node-timeout`: failures are handled by the scheduler, far
 * sooner; the cluster's own timeout only flags nodes for the clients.
 */
export const DEFAULT_CLUSTER_NODE_TIMEOUT_MS = 5000;

/** The cluster config file name in the data dir (the node's identity and view). */
export const CLUSTER_CONFIG_FILE = "nodes.conf";

/**
 * The extra `redis-server` arguments of a cluster node: cluster mode, its bus
 * port, its config file in the data dir, no automatic failover by the
 * replicas (the scheduler decides, with its epoch), and a cluster that keeps
 * serving the slots that have a master while a shard has none.
 */
export function clusterServerArgs(options: ClusterNodeOptions): string[] {
  return [
    "--cluster-enabled",
    "yes",
    "--cluster-config-file",
    CLUSTER_CONFIG_FILE,
    "--cluster-port",
    String(options.busPort),
    "--cluster-node-timeout",
    String(options.nodeTimeoutMs ?? DEFAULT_CLUSTER_NODE_TIMEOUT_MS),
    "--cluster-replica-no-failover",
    "yes",
    "--cluster-require-full-coverage",
    "no",
  ];
}

/** One line of `CLUSTER NODES`. */
export interface ClusterNodeEntry {
  id: string;
  /** `ip:port` (without the bus port). */
  addr: string;
  flags: string[];
  /** The master's id, for a replica. */
  masterId?: string;
  /** Number of slots it serves. */
  slots: number;
  /** The slots it serves as written (`0-5460`, `7`). */
  ranges: string[];
}

/** Parses the text of `CLUSTER NODES`; lines it cannot read are skipped. */
export function parseClusterNodes(text: string): ClusterNodeEntry[] {
  const out: ClusterNodeEntry[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(" ");
    if (f.length < 8 || !/^[0-9a-f]{40}$/.test(f[0]!)) continue;
    let slots = 0;
    const ranges: string[] = [];
    for (const s of f.slice(8)) {
      if (s.startsWith("[")) continue; // importing / migrating
      const m = /^(\d+)(?:-(\d+))?$/.exec(s);
      if (m) {
        slots += (m[2] === undefined ? 0 : Number(m[2]) - Number(m[1])) + 1;
        ranges.push(s);
      }
    }
    out.push({
      id: f[0]!,
      addr: f[1]!.split("@")[0]!,
      flags: f[2]!.split(","),
      ...(f[3] && f[3] !== "-" ? { masterId: f[3] } : {}),
      slots,
      ranges,
    });
  }
  return out;
}

/** What an executor reports of one cluster node (in its stats). */
export interface ClusterNodeStats {
  /** The node's own id. */
  nodeId: string;
  /** `cluster_state` (`ok` or `fail`). */
  state: string;
  /** Slots the node serves itself. */
  slots: number;
  /** `cluster_slots_assigned` as this node sees it. */
  slotsAssigned: number;
  /** For a replica: the id of its master. */
  masterNodeId?: string;
  /** The ids of the other nodes it knows. */
  known: string[];
  /** The ids it flags as failing (`fail` or `fail?`). */
  failing: string[];
  /**
   * Who serves which slots in this node's view (`id:ranges` of each node
   * with slots, sorted, joined by `|`): nodes agree on the configuration
   * when their signatures are equal (what `redis-cli --cluster check` compares).
   */
  signature: string;
}

/** Summarizes `CLUSTER NODES` and `CLUSTER INFO` texts; `undefined` without a `myself` line. */
export function clusterNodeStats(
  nodesText: string,
  infoText: string,
): ClusterNodeStats | undefined {
  const nodes = parseClusterNodes(nodesText);
  const me = nodes.find((n) => n.flags.includes("myself"));
  if (!me) return undefined;
  const info = new Map(
    infoText.split(/\r?\n/).filter((l) => l.includes(":")).map((l) => {
      const i = l.indexOf(":");
      return [l.slice(0, i), l.slice(i + 1).trim()] as const;
    }),
  );
  const others = nodes.filter((n) => n !== me);
  return {
    nodeId: me.id,
    state: info.get("cluster_state") ?? "unknown",
    slots: me.slots,
    slotsAssigned: Number(info.get("cluster_slots_assigned") ?? 0),
    ...(me.flags.includes("slave") && me.masterId ? { masterNodeId: me.masterId } : {}),
    known: others.filter((n) => !n.flags.includes("handshake")).map((n) => n.id),
    failing: others.filter((n) => n.flags.includes("fail") || n.flags.includes("fail?")).map((n) =>
      n.id
    ),
    signature: nodes.filter((n) => n.ranges.length > 0).map((n) =>
      `${n.id}:${[...n.ranges].sort().join(",")}`
    ).sort().join("|"),
  };
}

/** Reads the {@linkcode ClusterNodeStats} of the node behind `client`. */
export async function readClusterNodeStats(
  client: RedisClient,
  timeoutMs: number,
): Promise<ClusterNodeStats | undefined> {
  const nodes = String(await client.call("CLUSTER", ["NODES"], timeoutMs));
  const info = String(await client.call("CLUSTER", ["INFO"], timeoutMs));
  return clusterNodeStats(nodes, info);
}

/** One CLUSTER change the scheduler asks of a node. */
export type ClusterOp =
  /** `CLUSTER MEET ip port busPort`: join the node at that address. */
  | { op: "meet"; host: string; port: number; busPort: number }
  /** `CLUSTER ADDSLOTSRANGE`: serve these slots. */
  | { op: "addslots"; ranges: SlotRange[] }
  /** `CLUSTER REPLICATE id`: become a replica of that master. */
  | { op: "replicate"; nodeId: string }
  /** `CLUSTER FAILOVER TAKEOVER` (on a replica): become the master of its shard now. */
  | { op: "takeover" }
  /** `CLUSTER FORGET id` for each id (the ones it does not know are skipped). */
  | { op: "forget"; nodeIds: string[] };

const NODE_ID = /^[0-9a-f]{40}$/;

/**
 * Checks a list of ops from a message; throws a `TypeError` naming the bad
 * op. Returns the list typed.
 */
export function checkClusterOps(value: unknown): ClusterOp[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new TypeError('Cluster command field "ops" must be a non-empty list');
  }
  const port = (p: unknown) => Number.isInteger(p) && (p as number) > 0 && (p as number) < 65536;
  const slot = (s: unknown) => Number.isInteger(s) && (s as number) >= 0 && (s as number) < 16384;
  for (const op of value as Record<string, unknown>[]) {
    const bad = () => new TypeError(`Bad cluster op ${JSON.stringify(op)}`);
    if (typeof op !== "object" || op === null) throw bad();
    switch (op.op) {
      case "meet":
        if (typeof op.host !== "string" || !op.host || !port(op.port) || !port(op.busPort)) {
          throw bad();
        }
        break;
      case "addslots":
        if (
          !Array.isArray(op.ranges) || op.ranges.length === 0 ||
          !op.ranges.every((r) =>
            Array.isArray(r) && r.length === 2 && slot(r[0]) && slot(r[1]) && r[0] <= r[1]
          )
        ) throw bad();
        break;
      case "replicate":
        if (typeof op.nodeId !== "string" || !NODE_ID.test(op.nodeId)) throw bad();
        break;
      case "takeover":
        break;
      case "forget":
        if (
          !Array.isArray(op.nodeIds) ||
          !op.nodeIds.every((id) => typeof id === "string" && NODE_ID.test(id))
        ) throw bad();
        break;
      default:
        throw bad();
    }
  }
  return value as ClusterOp[];
}

/** An IPv4 or IPv6 literal (what `CLUSTER MEET` needs). */
function isIp(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":");
}

/** `host` as an IP address: itself when it is one, else its first A record. */
export async function resolveIp(host: string): Promise<string> {
  if (isIp(host)) return host;
  if (host === "localhost") return "127.0.0.1";
  const found = await Deno.resolveDns(host, "A");
  if (!found[0]) throw new Error(`Cannot resolve "${host}" to an IPv4 address`);
  return found[0];
}

/**
 * Runs `op` on the node behind `client`. A `takeover` resolves once the node
 * says it is a master (the takeover itself is asynchronous in redis).
 */
export async function runClusterOp(
  client: RedisClient,
  op: ClusterOp,
  timeoutMs: number,
): Promise<void> {
  switch (op.op) {
    case "meet":
      await client.call(
        "CLUSTER",
        ["MEET", await resolveIp(op.host), op.port, op.busPort],
        timeoutMs,
      );
      return;
    case "addslots":
      await client.call("CLUSTER", ["ADDSLOTSRANGE", ...op.ranges.flat()], timeoutMs);
      return;
    case "replicate":
      await client.call("CLUSTER", ["REPLICATE", op.nodeId], timeoutMs);
      return;
    case "takeover": {
      await client.call("CLUSTER", ["FAILOVER", "TAKEOVER"], timeoutMs);
      const deadline = Date.now() + timeoutMs;
      for (let wait = 2;; wait = Math.min(50, wait * 2)) {
        if ((await client.role(timeoutMs)) === "master") return;
        if (Date.now() + wait >= deadline) {
          throw new Error(`Takeover on ${client.host}:${client.port} did not finish in time`);
        }
        await new Promise((r) => setTimeout(r, wait));
      }
    }
    case "forget": {
      const errors: string[] = [];
      for (const id of op.nodeIds) {
        try {
          await client.call("CLUSTER", ["FORGET", id], timeoutMs);
        } catch (error) {
          // A node it does not know is already forgotten there.
          if (!/unknown node/i.test((error as Error).message)) {
            errors.push(`${id}: ${(error as Error).message}`);
          }
        }
      }
      if (errors.length) throw new Error(`CLUSTER FORGET failed for ${errors.join("; ")}`);
      return;
    }
  }
}
