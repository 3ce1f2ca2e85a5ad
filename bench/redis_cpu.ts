/**
 * How much CPU the redis-servers themselves use in a 1 master + N slaves
 * create, against the same servers started directly: each server's own
 * `INFO cpu` (its process and its exited children, the replication forks),
 * summed, asked once every slave is in sync. With the control group's
 * total for mr-redis (bench/_cpu.ts), what is left is mr-redis's own
 * processes: the sched, the local cluster and the executors.
 *
 *     deno run -A bench/redis_cpu.ts [samples] [slaves] [proxies]
 *
 * `proxies` sets the instances' `Proxies` (the sched's default when left out).
 *
 * Not a benchmark (no ratio, no goal): a diagnosis for bench/RESULTS.md.
 *
 * @module
 */
import {
  command,
  cpuSeconds,
  credentials,
  destroy,
  directRedisArgs,
  portBlock,
  processesUnder,
  sleep,
  startMrRedis,
  status,
  waitStatusRunning,
} from "./_harness.ts";
import { CpuGroup } from "./_cpu.ts";

const samples = Number(Deno.args[0] ?? 3);
const slaves = Number(Deno.args[1] ?? 50);
const proxies = Deno.args[2] === undefined ? undefined : Number(Deno.args[2]);
for (const [name, value] of [["samples", samples], ["slaves", slaves], ["proxies", proxies ?? 0]]) {
  if (!Number.isInteger(value) || (value as number) < (name === "proxies" ? 0 : 1)) {
    console.error(
      `redis_cpu: ${name} must be a whole number${name === "proxies" ? "" : " ≥ 1"}, got ${
        JSON.stringify(Deno.args)
      }`,
    );
    Deno.exit(2);
  }
}

/** Self and children CPU-seconds of the redis-server on `port`. */
async function serverCpu(
  port: number,
  host = "127.0.0.1",
  password?: string,
): Promise<{ self: number; children: number }> {
  const text = String(await command(port, ["INFO", "cpu"], host, password));
  const field = (name: string) => Number(new RegExp(`${name}:([0-9.]+)`).exec(text)?.[1] ?? NaN);
  return {
    self: field("used_cpu_sys") + field("used_cpu_user"),
    children: field("used_cpu_sys_children") + field("used_cpu_user_children"),
  };
}

async function online(port: number, want: number): Promise<void> {
  for (;;) {
    const text = String(await command(port, ["INFO", "replication"]).catch(() => ""));
    if ((text.match(/state=online/g) ?? []).length >= want) return;
    await sleep(20);
  }
}

async function direct(): Promise<{ wall: number; self: number; children: number; group?: number }> {
  const block = portBlock(slaves + 1);
  const dir = await Deno.makeTempDir({ prefix: "mr-redis-rcpu-" });
  const cpu = CpuGroup.open();
  const spawn = (port: number, extra: string[]) => {
    const start = () =>
      new Deno.Command("redis-server", {
        args: directRedisArgs(dir, port, ["--maxmemory", "10mb", ...extra]),
        stdout: "null",
        stderr: "null",
      }).spawn();
    return cpu ? cpu.startInside(start) : start();
  };
  const children: Deno.ChildProcess[] = [];
  try {
    const t0 = performance.now();
    const [masterPort, ...slavePorts] = block.ports;
    children.push(spawn(masterPort!, []));
    for (;;) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: masterPort! })).close();
        break;
      } catch {
        await sleep(2);
      }
    }
    for (const p of slavePorts) {
      children.push(spawn(p, ["--replicaof", "127.0.0.1", String(masterPort)]));
    }
    await online(masterPort!, slaves);
    const wall = (performance.now() - t0) / 1000;
    const group = cpu?.seconds();
    let self = 0, kids = 0;
    for (const p of block.ports) {
      const c = await serverCpu(p);
      self += c.self;
      kids += c.children;
    }
    return { wall, self, children: kids, ...(group !== undefined ? { group } : {}) };
  } finally {
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await Promise.allSettled(children.map((c) => c.status));
    cpu?.close();
    block.release();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** CPU-seconds of `pid` so far; 0 once it is gone. */
function procCpu(pid: number): number {
  return cpuSeconds(pid) || 0;
}

/** The executors running in sandboxes under `dir`: pid → CPU-s. */
function executors(dir: string): Map<number, number> {
  return new Map(processesUnder(dir, "executor").map((pid) => [pid, procCpu(pid)]));
}

async function viaMr(
  mr: Awaited<ReturnType<typeof startMrRedis>>,
  name: string,
): Promise<{ wall: number; self: number; children: number; group?: number }> {
  const before = mr.cpu?.seconds();
  const schedBefore = procCpu(mr.schedPid);
  const localPid = mr.localPid!;
  const localBefore = procCpu(localPid);
  const execBefore = executors(mr.dir);
  const t0 = performance.now();
  const response = await fetch(`${mr.api}/v1/CREATE/${name}/10/1/${slaves}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      Distribution: 20,
      ...(proxies !== undefined ? { Proxies: proxies } : {}),
    }),
  });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`CREATE ${name}: ${response.status} ${text}`);
  await waitStatusRunning(mr.api, name);
  const wall = (performance.now() - t0) / 1000;
  const group = before === undefined ? undefined : mr.cpu!.seconds() - before;
  let exec = 0;
  for (const [pid, c] of executors(mr.dir)) exec += c - (execBefore.get(pid) ?? 0);
  console.log(
    `  sched ${(procCpu(mr.schedPid) - schedBefore).toFixed(2)}, local cluster ${
      (procCpu(localPid) - localBefore).toFixed(2)
    }, executors ${exec.toFixed(2)} CPU-s`,
  );
  const s = (await status(mr.api, name))!;
  const password = await credentials(mr.api, name);
  let self = 0, kids = 0;
  for (const p of [s.Master!, ...s.Slaves]) {
    const c = await serverCpu(Number(p.Port), p.IP, password);
    self += c.self;
    kids += c.children;
  }
  await destroy(mr.api, name);
  return { wall, self, children: kids, ...(group !== undefined ? { group } : {}) };
}

const fmt = (r: { wall: number; self: number; children: number; group?: number }) =>
  `wall ${r.wall.toFixed(3)} s; redis-servers ${r.self.toFixed(3)} + forks ${
    r.children.toFixed(3)
  } CPU-s; whole group ${r.group?.toFixed(2) ?? "?"} CPU-s; rest ${
    r.group === undefined ? "?" : (r.group - r.self - r.children).toFixed(2)
  }`;

for (let i = 0; i < samples; i++) {
  console.log(`direct: ${fmt(await direct())}`);
  const dir = await Deno.makeTempDir({ prefix: "mr-redis-rcpu-mr-" });
  const mr = await startMrRedis(dir, { agents: 3, cpus: 16, memMB: 8192 });
  try {
    console.log(`cold:   ${fmt(await viaMr(mr, `cold${i}`))}`);
    console.log(`warm:   ${fmt(await viaMr(mr, `warm${i}`))}`);
  } finally {
    await mr.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
