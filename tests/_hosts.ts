/**
 * Multi-host local clusters for tests: a 198.18.x.0/24 subnet no other test
 * (here, in a parallel process or in another checkout's suite) holds at the
 * same time, and clean-up of its namespaces, veths and bridge whatever
 * happened. Where namespaces are unavailable, {@linkcode hostsUnavailable}
 * says why (the suites print it and are ignored).
 *
 * @module
 */

import {
  agentAddress,
  agentNamespace,
  type HostNetwork,
  hostNetworkUnavailable,
  parseHostNetwork,
  removeHostNetwork,
} from "../lib/mesos/local/host_network.ts";

import { join } from "node:path";
import { testRelease } from "./_release.ts";
import { type Sched, type SchedOptions, startSched } from "./_sched.ts";

const LOCK_DIR = "/tmp/mr-redis-test-nets";

/** Why this machine cannot run multi-host clusters, or `undefined` (checked once). */
export const hostsUnavailable: string | undefined = await hostNetworkUnavailable();

/** A subnet held for one test. */
export interface TestNetwork extends HostNetwork {
  /** Removes whatever of the network is left (processes, namespaces, links), then gives the subnet back. */
  release(): Promise<void>;
}

function bridgeExists(name: string): boolean {
  try {
    Deno.statSync(`/sys/class/net/${name}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Holds a `198.18.x.0/24` (x random) by an exclusive `flock` on
 * `/tmp/mr-redis-test-nets/x.lock` (dropped by the kernel when the process
 * ends) whose bridge does not exist.
 */
export function reserveTestNetwork(): TestNetwork {
  Deno.mkdirSync(LOCK_DIR, { recursive: true, mode: 0o777 });
  const start = Math.floor(Math.random() * 256);
  for (let i = 0; i < 256; i++) {
    const x = (start + i) % 256;
    const net = parseHostNetwork(`198.18.${x}.0/24`);
    const file = Deno.openSync(`${LOCK_DIR}/${x}.lock`, { create: true, write: true });
    if (!file.tryLockSync(true)) {
      file.close();
      continue;
    }
    if (bridgeExists(net.bridge)) {
      file.close();
      continue;
    }
    let released = false;
    return {
      ...net,
      async release() {
        if (released) return;
        released = true;
        try {
          await removeHostNetwork(net);
        } finally {
          file.close();
        }
      },
    };
  }
  throw new Error("No free 198.18.x.0/24 subnet for a test network");
}

/** Pids of the processes in agent `index`'s network namespace. */
export async function pidsOnHost(net: HostNetwork, index: number): Promise<number[]> {
  const out = await new Deno.Command("ip", {
    args: ["netns", "pids", agentNamespace(net, index)],
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(out.stdout).split("\n").map(Number).filter((p) => p > 0);
}

/**
 * Starts the release's sched (see `_release.ts`) in `dir` with `store` (the
 * embedded one by default) on 3 agent hosts of `net`; `ArtifactIP` is left empty (the bridge's
 * address, where the hosts reach this namespace).
 */
export async function startHostsSched(
  dir: string,
  net: HostNetwork,
  config: Record<string, unknown> = {},
  store: Pick<SchedOptions, "dbType" | "dbEndpoint"> = { dbType: "embedded" },
): Promise<Sched> {
  const release = await testRelease();
  return await startSched({
    dir,
    ...store,
    master: "local:3",
    program: join(release, "sched"),
    config: { LocalNetwork: net.subnet, ArtifactIP: "", ...config },
  });
}

/**
 * Starts etcd on host 0 of `net` (a network of its own the caller made with
 * `createHostNetwork(net, 1)`), data in `dir`; resolves with its endpoint
 * once `/health` answers. It dies with the network ({@linkcode TestNetwork.release}).
 */
export async function startEtcdOnHost(net: HostNetwork, dir: string): Promise<string> {
  const address = agentAddress(net, 0);
  const client = `http://${address}:2379`;
  const peer = `http://${address}:2380`;
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      agentNamespace(net, 0),
      "/usr/bin/etcd",
      "--name=test",
      `--data-dir=${dir}/etcd`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=test=${peer}`,
      "--log-level=error",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  child.unref();
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error("etcd on its host exited at once");
    try {
      const res = await fetch(`${client}/health`, { signal: AbortSignal.timeout(1000) });
      if ((await res.json()).health === "true") return `${address}:2379`;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error("etcd on its host did not answer within 60 s");
    await new Promise((r) => setTimeout(r, 200));
  }
}
