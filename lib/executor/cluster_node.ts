/**
 * The executor's side of Redis Cluster nodes: the data dir of a node that
 * starts anew, its view of the cluster for the stats, and the CLUSTER
 * changes the scheduler sends (`kind: "cluster"`), run in order over the
 * process's own (internal user's) connection.
 *
 * Durability by role holds in a cluster as elsewhere: a replica runs without
 * the AOF, and a `takeover` turns it on (its first rewrite done) before the
 * replica takes over its shard.
 *
 * @module
 */
import type { RedisClient } from "../redis/client.ts";
import {
  checkClusterOps,
  type ClusterNodeStats,
  readClusterNodeStats,
  runClusterOp,
} from "../redis/cluster.ts";

/**
 * Empties the data dir of a node that must start as a new node (a new id, no
 * slots, no data): its old `nodes.conf` would make it the node it was.
 */
export async function freshClusterDir(dataDir: string): Promise<void> {
  await Deno.remove(dataDir, { recursive: true }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
}

/** Reads the node's view; `undefined` when it cannot be read now (the monitor tells about health). */
export async function clusterView(
  client: RedisClient,
  timeoutMs: number,
): Promise<ClusterNodeStats | undefined> {
  try {
    return await readClusterNodeStats(client, timeoutMs);
  } catch {
    return undefined;
  }
}

/** What {@linkcode runClusterCommand} needs of the task. */
export interface ClusterCommandTarget {
  client: RedisClient;
  /** Before a takeover: make the node a writer-to-be (its write guard, its AOF). */
  beforeTakeover(): Promise<void>;
}

/**
 * Checks and runs the `ops` of a cluster command, in order; stops at the
 * first that fails (its error names the op).
 */
export async function runClusterCommand(
  target: ClusterCommandTarget,
  ops: unknown,
  timeoutMs: number,
): Promise<void> {
  const list = checkClusterOps(ops);
  for (const op of list) {
    if (op.op === "takeover") await target.beforeTakeover();
    try {
      await runClusterOp(target.client, op, timeoutMs);
    } catch (error) {
      throw new Error(`Cluster op ${op.op} failed: ${(error as Error).message}`, { cause: error });
    }
  }
}
