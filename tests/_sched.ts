/**
 * End-to-end helpers: run the real `sched` process on loopback ports, talk to
 * its REST API, and check the redis instances it creates with ioredis.
 *
 * @module
 */
import { processesWhere } from "./_procs.ts";
import { Redis } from "ioredis";
import { freePort, waitFor } from "./_util.ts";
import { BLOCK_SIZE, holdPortRange, type PortRange, reservePortRange } from "./_ports.ts";
import { openStore } from "../lib/store/mod.ts";
import { assert, assertEquals } from "./_assert.ts";
import { stopLocalCluster } from "../lib/mesos/local/daemon.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** Options of {@linkcode startSched}. */
export interface SchedOptions {
  /** Work dir for config, log, embedded store, local cluster. */
  dir: string;
  dbType: "embedded" | "etcd" | "zookeeper";
  /** etcd/ZooKeeper endpoint; the embedded store lives in `dir`. */
  dbEndpoint?: string;
  /** `local:N` (default `local:3`) or `127.0.0.1:P`. */
  master?: string;
  /** Key prefix (default a fresh one, so tests can share a store). */
  prefix?: string;
  /** Reuse these ports (for a restart). */
  httpPort?: number;
  artifactPort?: number;
  /**
   * First port of the local cluster's agents (each gets {@linkcode LOCAL_PORTS_PER_AGENT}); by
   * default a range held for this sched (see `_ports.ts`) — a restart passes the one it had.
   */
  localPortsBase?: number;
  /** Ports of each local agent (default {@linkcode LOCAL_PORTS_PER_AGENT}). */
  localPortsPerAgent?: number;
  /** The `sched` program to run (a release's `sched`); default `deno run cmd/sched.ts`. */
  program?: string;
  /** More config fields (`APIToken`, `CertFile`, ...). */
  config?: Record<string, unknown>;
  /** The API token the helpers send (for `APIToken`/`APITokenFile` set in `config`). */
  token?: string;
  /** The certificate to trust when `config` sets `CertFile` (the API is then HTTPS). */
  caCert?: string;
  /** Where the test reaches the API (default 127.0.0.1; a sched on a host of its own sets `HTTPAddress` too). */
  apiHost?: string;
}

/** Ports each agent of a sched's local cluster offers in the tests. */
export const LOCAL_PORTS_PER_AGENT = BLOCK_SIZE;

/** A running sched process. */
export interface Sched {
  url: string;
  httpPort: number;
  artifactPort: number;
  prefix: string;
  logFile: string;
  options: SchedOptions;
  /**
   * SIGTERM, then SIGKILL after 15 s; waits for the exit. The local cluster
   * (which outlives sched) is stopped as well, and anything left in `dir`.
   */
  stop(): Promise<void>;
  /** SIGKILL; waits for the exit; then stops the local cluster like {@linkcode Sched.stop}. */
  kill(): Promise<void>;
  /** Sends `signal` (SIGTERM or SIGKILL) to sched alone and waits for its exit: the local cluster keeps running. */
  terminate?(signal: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** The log so far. */
  log(): string;
  /** `fetch` of a path of the API, with the token and the certificate of the options. */
  api(path: string, init?: RequestInit): Promise<Response>;
}

/** `fetch` for a sched started with `options`: its token, and its certificate trusted. */
export function apiFetch(
  base: string,
  options: Pick<SchedOptions, "token" | "caCert">,
): (path: string, init?: RequestInit) => Promise<Response> {
  const client = options.caCert ? Deno.createHttpClient({ caCerts: [options.caCert] }) : undefined;
  return (path, init = {}) => {
    const headers = new Headers(init.headers);
    if (options.token) headers.set("authorization", `Bearer ${options.token}`);
    return fetch(`${base}${path}`, { ...init, headers, ...(client ? { client } : {}) });
  };
}

/**
 * Starts `deno run -A cmd/sched.ts -config=<dir>/config.json` and waits until
 * it is ready: `GET /v1/HEALTH` answers 200 (it leads, is subscribed to Mesos
 * and reaches its store). A first answer is not enough: with etcd or
 * ZooKeeper a scheduler answers STATUS read-only before it takes the lock.
 * With a local cluster its agents get a port range held for this sched until
 * it stops (the range is in the returned `options`, for a restart).
 */
export async function startSched(options: SchedOptions): Promise<Sched> {
  const master = options.master ?? "local:3";
  const localAgents = master === "local" ? 3 : Number(/^local:(\d+)$/.exec(master)?.[1] ?? 0);
  let ports: PortRange | undefined;
  if (localAgents > 0) {
    const size = localAgents * (options.localPortsPerAgent ?? LOCAL_PORTS_PER_AGENT);
    ports = options.localPortsBase !== undefined
      ? holdPortRange(options.localPortsBase, size)
      : reservePortRange(size);
    options = { ...options, localPortsBase: ports.base };
  }
  try {
    return await startSchedOn(options, ports);
  } catch (error) {
    ports?.release();
    throw error;
  }
}

async function startSchedOn(options: SchedOptions, ports: PortRange | undefined): Promise<Sched> {
  const httpPort = options.httpPort ?? freePort();
  const artifactPort = options.artifactPort ?? freePort();
  const prefix = options.prefix ?? `/mrr-test-${crypto.randomUUID().slice(0, 8)}`;
  const logFile = `${options.dir}/sched.log`;
  const config = {
    Master: options.master ?? "local:3",
    DBType: options.dbType,
    DBEndPoint: options.dbEndpoint ?? `${options.dir}/store/state.db`,
    LogFile: logFile,
    ArtifactIP: "127.0.0.1",
    ArtifactPort: artifactPort,
    HTTPPort: httpPort,
    HTTPAddress: "127.0.0.1",
    StorePrefix: prefix,
    LocalWorkDir: `${options.dir}/local`,
    ...(options.localPortsBase
      ? {
        LocalPortsBase: options.localPortsBase,
        LocalPortsPerAgent: options.localPortsPerAgent ?? LOCAL_PORTS_PER_AGENT,
      }
      : {}),
    ...options.config,
  };
  const proc = await spawnSchedProcess(options.dir, config, options.program);
  const url = `${options.caCert ? "https" : "http"}://${
    options.caCert ? "localhost" : options.apiHost ?? "127.0.0.1"
  }:${httpPort}`;
  const api = apiFetch(url, options);
  try {
    const answered = await waitFor("sched to be ready (GET /v1/HEALTH 200)", async () => {
      if (proc.exited) return "exited"; // stop waiting at once
      const res = await api("/v1/HEALTH");
      await res.body?.cancel();
      return res.ok ? "ok" : undefined;
    }, { timeoutMs: 60_000, intervalMs: 200 });
    if (answered === "exited") {
      await proc.kill();
      await stopLocalProcesses(options.dir);
      throw new Error(`sched exited: ${proc.log()}`);
    }
    // LogFile is honoured: the start-up lines are in the file, not on stderr.
    assert(
      proc.log().includes(`Starting the HTTP server at port ${httpPort}`),
      `the log file ${logFile} holds the start-up lines`,
    );
  } catch (error) {
    await proc.kill();
    // The local cluster it may have started outlives it: stop that too.
    await stopLocalProcesses(options.dir);
    throw error;
  }
  return {
    url,
    httpPort,
    artifactPort,
    prefix,
    logFile,
    options,
    log: proc.log,
    async stop() {
      await proc.stop();
      await stopLocalProcesses(options.dir);
      ports?.release();
    },
    async kill() {
      await proc.kill();
      await stopLocalProcesses(options.dir);
      ports?.release();
    },
    terminate: (signal) => signal === "SIGKILL" ? proc.kill() : proc.stop(),
    api,
  };
}

/**
 * Pids of the processes that belong to a test's `dir`: their working
 * directory is in it or their command line names it (sched, the local
 * cluster, executors in their sandboxes, redis-servers in their data dirs).
 */
export function processesIn(dir: string): { pid: number; cmd: string }[] {
  return processesWhere(({ cmd, cwd }) =>
    cwd === dir || cwd.startsWith(`${dir}/`) || cmd.includes(dir)
  ).map(({ pid, cmd }) => ({ pid, cmd }));
}

/**
 * Stops the local cluster a sched of a test's `dir` started (`Master`
 * `local`/`local:N`, work dir `dir/local`) gracefully, then SIGKILLs whatever
 * still runs from that work dir, so no test leaves a process behind. Other
 * processes of the test (a cluster it runs itself elsewhere) are left alone.
 */
export async function stopLocalProcesses(dir: string): Promise<void> {
  const workDir = `${dir}/local`;
  await stopLocalCluster(workDir, { timeoutMs: 30_000 }).catch(() => {});
  for (const { pid } of processesIn(workDir)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/** A `sched` process: its log, signals and ends. */
export interface SchedProcess {
  /** The log file and stderr so far. */
  log(): string;
  /** Whether it has exited. */
  readonly exited: boolean;
  /** Resolves with the exit code. */
  readonly exitCode: Promise<number>;
  /** Sends a signal while it runs (SIGSTOP, SIGCONT, ...). */
  signal(signal: Deno.Signal): void;
  /** SIGCONT (in case it is paused) and SIGTERM, SIGKILL after 15 s; waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL; waits for the exit. */
  kill(): Promise<void>;
}

/** `PATH` without the entries under `root`. */
function pathOutside(root: string): string {
  const prefix = root.replace(/\/+$/, "");
  return (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")
    .filter((p) => p !== prefix && !p.startsWith(`${prefix}/`)).join(":");
}

/**
 * Writes `config` to `<dir>/config.json` and runs `deno run -A cmd/sched.ts
 * -config=...` (or `program -config=...`) in `dir` (its log goes to
 * `config.LogFile`); does not wait for the API.
 */
export async function spawnSchedProcess(
  dir: string,
  config: Record<string, unknown> & { LogFile: string },
  program?: string,
): Promise<SchedProcess> {
  const configPath = `${dir}/config.json`;
  await Deno.writeTextFile(configPath, JSON.stringify(config, null, 2));
  const child = new Deno.Command(program ?? Deno.execPath(), {
    args: program
      ? [`-config=${configPath}`]
      : ["run", "-A", `${ROOT}cmd/sched.ts`, `-config=${configPath}`],
    cwd: dir,
    // A release runs as on a host of its own: no PATH entry of this source
    // tree (npx puts its node_modules/.bin there), which the agents would
    // pass on to executors.
    ...(program ? { env: { PATH: pathOutside(ROOT) } } : {}),
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) stderr += decoder.decode(chunk);
  })();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const readLog = () => {
    try {
      return Deno.readTextFileSync(config.LogFile);
    } catch {
      return "";
    }
  };
  const finish = async () => {
    await status;
    await reading;
  };
  const signal = (sig: Deno.Signal) => {
    if (!exited) child.kill(sig);
  };
  return {
    log: () => readLog() + stderr,
    get exited() {
      return exited;
    },
    exitCode: status.then((s) => s.code),
    signal,
    async stop() {
      signal("SIGCONT");
      signal("SIGTERM");
      const timer = setTimeout(() => signal("SIGKILL"), 15_000);
      await finish();
      clearTimeout(timer);
    },
    async kill() {
      signal("SIGKILL");
      await finish();
    },
  };
}

/**
 * Spawns a sched whose `HTTPPort` is `httpPort` (or a free port) and waits
 * until this very process listens on it (its log says so): a port picked
 * free a moment ago may be taken by another test's process meanwhile, whose
 * answers must not be mistaken for this one's. When the port turned out
 * taken, tries again on another free port (up to 5 times). `config` gets the
 * port and returns the config (with its `LogFile`, truncated before each try).
 */
export async function spawnListening(
  dir: string,
  config: (httpPort: number) => Record<string, unknown> & { LogFile: string },
  httpPort?: number,
): Promise<{ proc: SchedProcess; httpPort: number }> {
  for (let attempt = 1;; attempt++) {
    const port = attempt === 1 && httpPort !== undefined ? httpPort : freePort();
    const c = config(port);
    await Deno.writeTextFile(c.LogFile, "");
    const proc = await spawnSchedProcess(dir, c);
    const listening = await waitFor(`sched to listen on ${port}`, () => {
      if (proc.log().includes(`Starting the HTTP server at port ${port}`)) return "yes";
      return proc.exited ? "exited" : undefined;
    }, { timeoutMs: 60_000, intervalMs: 50 });
    if (listening === "yes") return { proc, httpPort: port };
    await proc.kill();
    if (attempt >= 5 || !/HTTPPort .*in use/.test(proc.log())) {
      throw new Error(`sched exited: ${proc.log()}`);
    }
  }
}

/** One process in STATUS. */
export interface ProcView {
  IP: string;
  Port: string;
  MemoryCapacity: number;
  State: string;
  /** The instance's password, from CREDENTIALS (added by these helpers, not in STATUS). */
  password?: string;
}

/** STATUS of an instance. */
export interface View {
  Name: string;
  Type: string;
  Status: string;
  Capacity: number;
  Master: ProcView | null;
  Slaves: ProcView[];
  Reason: string | null;
  ProcessesRunning: number;
  ProcessesTotal: number;
  /** Failover epoch (how many times the master changed). */
  Epoch?: number;
  /** The last notable event, or `null`. */
  LastEvent?: string | null;
}

/** POST /v1/CREATE; returns status and text. */
export async function create(
  sched: Sched,
  name: string,
  capacityMB: number,
  slaves: number,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  const res = await sched.api(`/v1/CREATE/${name}/${capacityMB}/1/${slaves}`, {
    method: "POST",
    ...(body !== undefined
      ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } }
      : {}),
  });
  return { status: res.status, text: await res.text() };
}

/** GET /v1/CREDENTIALS/{name}: the password (`undefined` on 404 or for an instance without one). */
export async function password(sched: Sched, name: string): Promise<string | undefined> {
  const res = await sched.api(`/v1/CREDENTIALS/${name}`);
  if (res.status !== 200) {
    await res.body?.cancel();
    return undefined;
  }
  return (await res.json()).Password ?? undefined;
}

/** Gives every process of `view` the instance's password, for {@linkcode redisOf}. */
async function withPassword(sched: Sched, view: View): Promise<View> {
  const secret = await password(sched, view.Name);
  if (secret !== undefined) {
    for (const p of [view.Master, ...(view.Slaves ?? [])]) if (p) p.password = secret;
  }
  return view;
}

/** GET /v1/STATUS/{name}; `undefined` on 404. Processes carry the password. */
export async function status(sched: Sched, name: string): Promise<View | undefined> {
  const res = await sched.api(`/v1/STATUS/${name}`);
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  assertEquals(res.status, 200);
  return await withPassword(sched, await res.json());
}

/** GET /v1/STATUS. Processes carry the password. */
export async function list(sched: Sched): Promise<View[]> {
  return await Promise.all((await statusList(sched)).map((v) => withPassword(sched, v)));
}

/**
 * Waits until the `count` instances whose names start with `prefix` are
 * RUNNING, for as long as more keep coming up: fails only when none came up
 * for `stallMs` (or after `capMs` in all), naming those not RUNNING and why.
 * On a busy machine a burst is slow, not stuck. Polls the STATUS list alone
 * (per-instance requests would load the scheduler under test).
 */
export async function waitAllRunning(
  sched: Sched,
  prefix: string,
  count: number,
  { stallMs = 120_000, capMs = 600_000 } = {},
): Promise<void> {
  const started = Date.now();
  let best = -1;
  let progressAt = started;
  while (true) {
    const res = await sched.api("/v1/STATUS");
    const all: { Name: string; Status: string; Reason?: string }[] = await res.json();
    const burst = all.filter((v) => v.Name.startsWith(prefix));
    const running = burst.filter((v) => v.Status === "RUNNING").length;
    if (running === count && burst.length === count) return;
    if (running > best) {
      best = running;
      progressAt = Date.now();
    }
    const now = Date.now();
    if (now - progressAt > stallMs || now - started > capMs) {
      const waiting = burst.filter((v) => v.Status !== "RUNNING")
        .map((v) => `${v.Name} ${v.Status}${v.Reason ? ` (${v.Reason})` : ""}`);
      throw new Error(
        `${running} of ${count} instances RUNNING after ${now - started} ms, none more for ${
          now - progressAt
        } ms; not yet: ${waiting.slice(0, 5).join(", ")}\n--- sched log tail ---\n${
          sched.log().split("\n").slice(-40).join("\n")
        }`,
      );
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The STATUS list (no per-instance requests). */
export async function statusList(sched: Sched): Promise<View[]> {
  const res = await sched.api("/v1/STATUS");
  assertEquals(res.status, 200);
  return await res.json();
}

/** Waits until the instance is RUNNING; returns its STATUS. */
export async function waitRunning(sched: Sched, name: string, timeoutMs = 60_000): Promise<View> {
  let last: View | undefined;
  try {
    return await waitFor(`instance ${name} RUNNING`, async () => {
      last = await status(sched, name);
      return last?.Status === "RUNNING" ? last : undefined;
    }, { timeoutMs, intervalMs: 250 });
  } catch (error) {
    throw new Error(
      `${(error as Error).message}; last STATUS ${JSON.stringify(last)}\n--- sched log tail ---\n${
        sched.log().split("\n").slice(-40).join("\n")
      }`,
    );
  }
}

/** DELETE and wait until STATUS answers 404. */
export async function deleteAndWait(sched: Sched, name: string): Promise<void> {
  const res = await sched.api(`/v1/DELETE/${name}`, { method: "DELETE" });
  const text = await res.text();
  assertEquals(res.status, 200, text);
  await waitFor(`instance ${name} gone`, async () => (await status(sched, name)) === undefined, {
    timeoutMs: 30_000,
    intervalMs: 200,
  });
}

/** An ioredis client for a STATUS process (no retries; close it). */
export function redisOf(p: ProcView): Redis {
  return new Redis({
    host: p.IP,
    port: Number(p.Port),
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    ...(p.password ? { password: p.password } : {}),
  });
}

/** Runs `fn` with a connected client, closing it after. */
export async function withRedis<T>(p: ProcView, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = redisOf(p);
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

/** Pids of redis-server processes listening on `port` (by command line / title). */
export async function redisPids(port: number | string): Promise<number[]> {
  const out = await new Deno.Command("pgrep", {
    args: ["-f", `redis-server.*[: ]${port}( |$)`],
    stdout: "piped",
    stderr: "null",
  }).output();
  // Only this network namespace's: a test host in a namespace of its own may
  // run a redis-server on the same port number.
  const ours = Deno.readLinkSync("/proc/self/ns/net");
  return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.trim()).map(Number)
    .filter((pid) => {
      try {
        return Deno.readLinkSync(`/proc/${pid}/ns/net`) === ours;
      } catch {
        return false; // gone
      }
    });
}

/**
 * The scenario every store backend runs: S and MS (1+2) created and checked
 * with ioredis, listed, a duplicate refused, deleted without leftovers, and
 * created again.
 */
export async function basicScenario(
  t: Deno.TestContext,
  sched: Sched,
  /** Lists the store keys under a prefix while sched runs; omitted for the embedded store (one owner). */
  storeEntries?: (prefix: string) => Promise<{ key: string; value: string }[]>,
): Promise<void> {
  await t.step("create S and MS", async () => {
    assertEquals((await create(sched, "single", 50, 0)).status, 201);
    assertEquals((await create(sched, "ms", 60, 2)).status, 201);
    assertEquals((await create(sched, "ms", 60, 2)).status, 409, "duplicate");
  });
  let single!: View;
  let ms!: View;
  await t.step("both become RUNNING", async () => {
    single = await waitRunning(sched, "single");
    ms = await waitRunning(sched, "ms");
    assertEquals(single.Type, "S");
    assertEquals(single.Slaves, []);
    assertEquals(ms.Type, "MS");
    assertEquals(ms.Slaves.length, 2);
    assertEquals(ms.Capacity, 60);
  });
  await t.step("redis answers with maxmemory = capacity; slaves replicate", async () => {
    await withRedis(single.Master!, async (r) => {
      assertEquals(await r.config("GET", "maxmemory"), ["maxmemory", String(50 * 1024 * 1024)]);
      assertEquals(await r.set("k", "v"), "OK");
    });
    await withRedis(ms.Master!, async (r) => {
      assertEquals(await r.config("GET", "maxmemory"), ["maxmemory", String(60 * 1024 * 1024)]);
      await r.set("shared", "hello");
    });
    for (const s of ms.Slaves) {
      await withRedis(s, async (r) => {
        assertEquals(await r.config("GET", "maxmemory"), ["maxmemory", String(60 * 1024 * 1024)]);
        await waitFor("data on the slave", async () => (await r.get("shared")) === "hello", {
          timeoutMs: 10_000,
        });
      });
    }
  });
  await t.step("the list shows both", async () => {
    const names = (await list(sched)).map((v) => v.Name).sort();
    assertEquals(names, ["ms", "single"]);
  });
  await t.step("DELETE leaves no redis-server and no store key", async () => {
    const ports = [ms.Master!.Port, ...ms.Slaves.map((s) => s.Port), single.Master!.Port];
    await deleteAndWait(sched, "ms");
    await deleteAndWait(sched, "single");
    for (const port of ports) {
      await waitFor(
        `no redis-server on port ${port}`,
        async () => (await redisPids(port)).length === 0,
        { timeoutMs: 15_000 },
      );
    }
    const entries = storeEntries ? await storeEntries(sched.prefix) : [];
    const keys = entries.map((e) => e.key);
    assert(
      keys.every((k) => !k.includes("/instances/")),
      `store keys left: ${keys.join(", ")}`,
    );
    if (storeEntries) {
      // Their ports stay kept a while, stored by agent and block of ports.
      const retired = entries.filter((e) => e.key.startsWith(`${sched.prefix}/port_quarantine/`))
        .flatMap((e) => (JSON.parse(e.value).ports as { port: number; instance: string }[]));
      for (const port of ports) {
        assert(
          retired.some((r) => r.port === Number(port)),
          `port ${port} kept in the store (${keys.join(", ")})`,
        );
      }
    }
    assertEquals(await list(sched), []);
  });
  await t.step("the name can be created again", async () => {
    assertEquals((await create(sched, "ms", 30, 1)).status, 201);
    const again = await waitRunning(sched, "ms");
    assertEquals(again.Slaves.length, 1);
    await withRedis(again.Master!, async (r) => {
      assertEquals(await r.get("shared"), null, "a fresh instance");
    });
    await deleteAndWait(sched, "ms");
  });
}

/**
 * The basic scenario against an external store started for the test (etcd or
 * ZooKeeper): a sched on it, {@linkcode basicScenario}, and a look at the
 * store's keys afterwards.
 */
export async function externalStoreScenario(
  t: Deno.TestContext,
  dbType: "etcd" | "zookeeper",
  start: () => Promise<{ endpoint: string; stop(): Promise<void> }>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: `mr-redis-e2e-${dbType}-` });
  const svc = await start();
  try {
    const sched = await startSched({ dir, dbType, dbEndpoint: svc.endpoint });
    const storeEntries = async (prefix: string) => {
      const store = await openStore({ type: dbType, endpoints: svc.endpoint });
      try {
        return await store.list(prefix);
      } finally {
        await store.close();
      }
    };
    try {
      await basicScenario(t, sched, storeEntries);
    } finally {
      await sched.stop();
    }
  } finally {
    await svc.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
