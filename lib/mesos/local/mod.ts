/**
 * A Mesos-compatible master with N agents on one machine, speaking the real
 * Mesos v1 HTTP APIs (scheduler and executor), for development and tests.
 *
 * @example
 * ```ts
 * import { startLocalCluster } from "./mod.ts";
 * const { url, cluster } = await startLocalCluster({ agents: 2, workDir: "/tmp/mesos" });
 * // subscribe a scheduler at `${url}/api/v1/scheduler` ...
 * await cluster.stop();
 * ```
 *
 * @module
 */

import { LocalCluster, type LocalClusterOptions } from "./master.ts";

export { type AgentView, LocalCluster, type LocalClusterOptions } from "./master.ts";
export { type Credential, parseCredentials } from "./auth.ts";

/**
 * Starts a {@link LocalCluster} (what `Master: "local"` / `"local:N"` uses)
 * and returns its master URL (`http://127.0.0.1:<port>`) with the cluster.
 */
export async function startLocalCluster(
  options: LocalClusterOptions,
): Promise<{ url: string; cluster: LocalCluster }> {
  const cluster = new LocalCluster(options);
  try {
    await cluster.start();
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return { url: cluster.url, cluster };
}
