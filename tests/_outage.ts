/**
 * Helpers of the store-outage tests: a `sched` process on etcd or ZooKeeper
 * (started by the test, so the test can stop it) with the local Mesos cluster
 * in the test process, readiness through `GET /v1/HEALTH`, and a writer that
 * keeps writing to whatever STATUS names as the master and records every
 * write that `WAIT` acknowledged.
 *
 * @module
 */
import { BLOCK_SIZE, reservePortRange } from "./_ports.ts";
import { Redis } from "ioredis";
import { startLocalCluster } from "../lib/mesos/local/mod.ts";
import type { LocalCluster } from "../lib/mesos/local/mod.ts";
import { assertEquals } from "./_assert.ts";
import { freePort, tempDir, waitFor } from "./_util.ts";
import type { Service } from "./_services.ts";
import {
  apiFetch,
  password,
  type Sched,
  type SchedProcess,
  spawnListening,
  type View,
} from "./_sched.ts";

/** A sched process whose exit the test watches. */
export interface OutageSched extends Sched {
  /** The process (exit code, signals). */
  proc: SchedProcess;
}

/** A store, a local cluster and the sched processes of one test. */
export interface OutageEnv {
  dir: string;
  store: Service;
  cluster: LocalCluster;
  /** Starts a sched (`name` keeps its files apart) and waits until its API answers. */
  spawn(name: string, options?: { ttlSeconds?: number }): Promise<OutageSched>;
  /** Prints every sched's log (for a failed test). */
  dump(): void;
  /** Stops every sched, the cluster and the store; removes the dir. */
  close(): Promise<void>;
}

/**
 * Starts `store` and a local cluster of 3 agents on a port range held for
 * the test (see `_ports.ts`).
 */
export async function startOutageEnv(
  name: string,
  dbType: "etcd" | "zookeeper",
  start: () => Promise<Service>,
): Promise<OutageEnv> {
  const dir = await tempDir(name);
  const store = await start();
  const ports = reservePortRange(3 * BLOCK_SIZE);
  const { url, cluster } = await startLocalCluster({
    agents: 3,
    workDir: `${dir}/mesos`,
    portsBase: ports.base,
    portsPerAgent: BLOCK_SIZE,
  });
  const prefix = `/mrr-outage-${crypto.randomUUID().slice(0, 8)}`;
  const artifactPort = freePort();
  const running: OutageSched[] = [];
  const env: OutageEnv = {
    dir,
    store,
    cluster,
    async spawn(name, options = {}) {
      const sub = `${dir}/${name}`;
      await Deno.mkdir(sub, { recursive: true });
      const logFile = `${sub}/sched.log`;
      const { proc, httpPort } = await spawnListening(sub, (httpPort) => ({
        Master: new URL(url).host,
        DBType: dbType,
        DBEndPoint: store.endpoint,
        LogFile: logFile,
        ArtifactIP: "127.0.0.1",
        ArtifactPort: artifactPort,
        HTTPPort: httpPort,
        HTTPAddress: "127.0.0.1",
        StorePrefix: prefix,
        LeaderTTLSeconds: options.ttlSeconds ?? 6,
      }));
      const sched: OutageSched = {
        proc,
        url: `http://127.0.0.1:${httpPort}`,
        httpPort,
        artifactPort,
        prefix,
        logFile,
        options: { dir: sub, dbType },
        log: proc.log,
        stop: proc.stop,
        kill: proc.kill,
        api: apiFetch(`http://127.0.0.1:${httpPort}`, {}),
      };
      running.push(sched);
      await waitFor(`sched ${name} to answer`, async () => {
        if (proc.exited) throw new Error(`sched ${name} exited: ${proc.log()}`);
        const res = await fetch(`${sched.url}/v1/HEALTH`);
        await res.body?.cancel();
        return true;
      }, { timeoutMs: 30_000 });
      return sched;
    },
    dump() {
      for (const s of running) {
        console.log(`--- ${s.logFile} (exited: ${s.proc.exited}) ---\n${s.log()}`);
      }
    },
    async close() {
      if (Deno.env.get("MRR_KEEP_LOGS")) env.dump();
      for (const s of running) await s.stop().catch(() => {});
      await cluster.stop().catch(() => {});
      ports.release();
      await store.stop().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  return env;
}

/** The HEALTH answer of `sched`. */
export async function health(
  sched: Sched,
): Promise<
  { status: number; body: { Status: string; Role: string; Mesos: string; Store: string } }
> {
  const res = await fetch(`${sched.url}/v1/HEALTH`, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: await res.json() };
}

/** Waits until `sched` leads, is subscribed to Mesos and reaches its store (HEALTH 200). */
export async function waitReady(sched: OutageSched, timeoutMs = 60_000): Promise<void> {
  await waitFor("sched to be ready (HEALTH 200)", async () => {
    if (sched.proc.exited) throw new Error(`sched exited: ${sched.log()}`);
    return (await health(sched)).status === 200;
  }, { timeoutMs, intervalMs: 100 });
}

/** Whether the process is still running (it must never exit in these tests). */
export function assertAlive(sched: OutageSched): void {
  assertEquals(sched.proc.exited, false, `sched exited${tail(sched)}`);
}

/** The log tail, for failure messages. */
export function tail(sched: Sched, lines = 60): string {
  return `\n--- sched log tail ---\n${sched.log().split("\n").slice(-lines).join("\n")}`;
}

/**
 * POSTs CREATE every 100 ms until it answers 201 (another answer than 503
 * fails); returns the ms from `since` to the 201.
 */
export async function createWhenBack(
  sched: Sched,
  name: string,
  since: number,
  timeoutMs = 60_000,
): Promise<number> {
  return await waitFor(`CREATE ${name} to be accepted`, async () => {
    const res = await fetch(`${sched.url}/v1/CREATE/${name}/20/1/0`, {
      method: "POST",
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (res.status === 201) return Date.now() - since;
    if (res.status !== 503) throw new Error(`CREATE answered ${res.status}: ${text}`);
    return undefined;
  }, { timeoutMs, intervalMs: 100 });
}

/**
 * Writes `{tag}:{i}` = `v{i}` to the master STATUS names, one key at a time,
 * each followed by `WAIT 1 500`; keys that WAIT acknowledged are recorded.
 * Failed writes are retried on the next key after a fresh STATUS.
 */
export class AckedWriter {
  /** Keys acknowledged by at least one replica, with their values. */
  readonly acked = new Map<string, string>();
  /** Writes refused or failed (the master down, fenced, or not known). */
  failures = 0;
  /** The instance password, once read (it never changes). */
  #password: string | undefined;
  #stopped = false;
  #loop: Promise<void>;

  constructor(readonly sched: Sched, readonly name: string, readonly tag: string) {
    this.#loop = this.#run();
  }

  async #master(): Promise<View["Master"]> {
    const res = await fetch(`${this.sched.url}/v1/STATUS/${this.name}`, {
      signal: AbortSignal.timeout(5_000),
    });
    if (res.status !== 200) {
      await res.body?.cancel();
      return null;
    }
    return ((await res.json()) as View).Master;
  }

  async #run(): Promise<void> {
    let client: Redis | undefined;
    let port = "";
    let i = 0;
    while (!this.#stopped) {
      try {
        const master = await this.#master();
        if (!master) throw new Error("no master");
        if (!client || master.Port !== port) {
          client?.disconnect();
          port = master.Port;
          this.#password ??= await password(this.sched, this.name);
          client = new Redis({
            host: master.IP,
            port: Number(master.Port),
            ...(this.#password ? { password: this.#password } : {}),
            lazyConnect: true,
            maxRetriesPerRequest: 1,
            retryStrategy: () => null,
            enableOfflineQueue: false,
            connectTimeout: 1_000,
            commandTimeout: 2_000,
          });
          client.on("error", () => {}); // failures show as rejected commands
          await client.connect();
        }
        for (let n = 0; n < 20 && !this.#stopped; n++) {
          const key = `${this.tag}:${i}`;
          const value = `v${i}`;
          i++;
          await client.set(key, value);
          const replicas = await client.call("WAIT", "1", "500") as number;
          if (replicas >= 1) this.acked.set(key, value);
        }
      } catch {
        this.failures++;
        client?.disconnect();
        client = undefined;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    client?.disconnect();
  }

  /** Stops writing; resolves once the loop ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }
}

/**
 * Runs a step of `t`; when it fails, prints every sched's log and stops the
 * test (later steps build on this one).
 */
export async function step(
  t: Deno.TestContext,
  env: OutageEnv,
  name: string,
  fn: () => Promise<void>,
): Promise<void> {
  if (!(await t.step(name, fn))) {
    env.dump();
    throw new Error(`Step "${name}" failed; the sched logs are above`);
  }
}
