/**
 * The creation benchmark on agents that are hosts of their own: the
 * release's `sched` (from `deno task release`, cached like the tests') on a
 * multi-host local cluster (`LocalNetwork`, 3 agent hosts), so every agent
 * fetches the release's executor and Deno runtime over its own link and runs
 * it from its sandbox. Root only (network namespaces).
 *
 * @module
 */
import { join } from "node:path";
import { testRelease } from "../tests/_release.ts";
import { hostsUnavailable, reserveTestNetwork } from "../tests/_hosts.ts";
import { reservePortRange } from "../tests/_ports.ts";
import { stopLocalCluster } from "../lib/mesos/local/daemon.ts";
import { freePort, type MrRedis, processesUnder, until } from "./_harness.ts";

/** Why the benchmark cannot run here (not root, no namespaces), or `undefined`. */
export const hostsBenchUnavailable: string | undefined = hostsUnavailable;

/**
 * Starts the release's sched with the embedded store in `dir` on a fresh
 * 3-host local cluster (its own subnet), once `GET /v1/HEALTH` answers 200.
 * `stop()` stops sched and the cluster and removes the network.
 */
export async function startMrRedisOnHosts(dir: string): Promise<MrRedis> {
  const release = await testRelease();
  const net = reserveTestNetwork();
  const ports = reservePortRange(3 * 500);
  const httpPort = freePort();
  const config = {
    Master: "local:3",
    LocalNetwork: net.subnet,
    LocalWorkDir: `${dir}/local`,
    LocalPortsBase: ports.base,
    LocalPortsPerAgent: 500,
    DBType: "embedded",
    DBEndPoint: `${dir}/state.db`,
    HTTPPort: httpPort,
    ArtifactPort: freePort(),
    LogFile: `${dir}/sched.log`,
  };
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
  const sched = new Deno.Command(join(release, "sched"), {
    args: [`-config=${dir}/config.json`],
    cwd: dir,
    stdout: "null",
    stderr: "null",
  }).spawn();
  const api = `http://127.0.0.1:${httpPort}`;
  const stop = async () => {
    try {
      sched.kill("SIGTERM");
    } catch { /* gone */ }
    const timer = setTimeout(() => {
      try {
        sched.kill("SIGKILL");
      } catch { /* gone */ }
    }, 10_000);
    await sched.status;
    clearTimeout(timer);
    await stopLocalCluster(`${dir}/local`).catch(() => {});
    await net.release();
    ports.release();
  };
  try {
    await until("the scheduler on agent hosts (HEALTH 200)", async () => {
      const res = await fetch(`${api}/v1/HEALTH`);
      await res.body?.cancel();
      return res.ok;
    }, 120_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { api, dir, schedPid: sched.pid, stop };
}

/**
 * The executors running in the sandboxes under `dir` (a multi-host local
 * cluster's work dir): processes there whose command line runs the bundle.
 */
export function executorsUnder(dir: string): number {
  return processesUnder(dir, "MrRedisExecutor.js").length;
}
