/**
 * End to end on the embedded default (`Master: "local:3"`, embedded store):
 * the local cluster outlives `sched`, so a SIGKILL or SIGTERM of sched loses
 * no acknowledged write, relaunches nothing and leaves no orphan; an explicit
 * `sched --stop-local` stops every process cleanly and the next start brings
 * every instance back with its keys; DELETE removes the data dirs.
 */
import type { Redis } from "ioredis";
import { assert, assertEquals } from "./_assert.ts";
import { tempDir, waitFor } from "./_util.ts";
import {
  create,
  deleteAndWait,
  processesIn,
  redisOf,
  type Sched,
  startSched,
  stopLocalProcesses,
  type View,
  waitRunning,
  withRedis,
} from "./_sched.ts";
import { type FailoverEnv, MasterSampler } from "./_failover.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** Writes `SET key` + `WAIT 1 1000` in a loop; keeps the keys a slave acknowledged. */
class AckedWriter {
  readonly acked = new Map<string, string>();
  errors = 0;
  #running = true;
  readonly #loop: Promise<void>;

  constructor(master: View["Master"] & object) {
    this.#loop = (async () => {
      let r: Redis | undefined;
      for (let i = 0; this.#running; i++) {
        try {
          if (!r) {
            r = redisOf(master);
            await r.connect();
          }
          const key = `w:${i}`;
          await r.set(key, `v${i}`);
          const n = await r.call("WAIT", "1", "1000") as number;
          if (n >= 1) this.acked.set(key, `v${i}`);
        } catch {
          this.errors++;
          r?.disconnect();
          r = undefined;
          await new Promise((res) => setTimeout(res, 50));
        }
      }
      r?.disconnect();
    })();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}

async function assertKeys(p: View["Master"] & object, values: Map<string, string>): Promise<void> {
  const keys = [...values.keys()];
  await withRedis(p, async (r) => {
    const got: (string | null)[] = [];
    for (let i = 0; i < keys.length; i += 1000) {
      got.push(...await r.mget(...keys.slice(i, i + 1000)));
    }
    const lost = keys.filter((k, i) => got[i] !== values.get(k));
    assertEquals(lost.length, 0, `${lost.length} of ${keys.length} acknowledged keys lost`);
  });
}

/** `port → pid` of the redis-servers of the test (in its dir). */
function redisServers(dir: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const { pid, cmd } of processesIn(dir)) {
    const m = /redis-server \S*:(\d+)/.exec(cmd);
    if (m) out.set(Number(m[1]), pid);
  }
  return out;
}

function addresses(v: View): string[] {
  return [v.Master!, ...v.Slaves].map((p) => `${p.IP}:${p.Port}`).sort();
}

async function restart(old: Sched): Promise<Sched> {
  return await startSched({
    ...old.options,
    prefix: old.prefix,
    httpPort: old.httpPort,
    artifactPort: old.artifactPort,
  });
}

Deno.test({
  name: "the local cluster outlives sched: SIGKILL, SIGTERM and --stop-local lose no data",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await tempDir("e2e-local-outlives");
    let sched = await startSched({ dir, dbType: "embedded" });
    // The sampler probes the processes STATUS names (no port range: the
    // single instance is master too, rightly).
    await Deno.mkdir(`${dir}/sampler-scope`);
    const env = { sched, dir: `${dir}/sampler-scope` } as FailoverEnv;
    try {
      let ms!: View;
      let single!: View;
      const singleKeys = new Map([["s:a", "1"], ["s:b", "2"]]);
      await t.step("a 1+2 and a single instance run", async () => {
        assertEquals((await create(sched, "w", 50, 2)).status, 201);
        assertEquals((await create(sched, "one", 50, 0)).status, 201);
        ms = await waitRunning(sched, "w");
        single = await waitRunning(sched, "one");
        await withRedis(single.Master!, async (r) => {
          for (const [k, v] of singleKeys) await r.set(k, v);
        });
      });

      let acked = new Map<string, string>();
      await t.step(
        "SIGKILL of sched under a writing client: nothing lost or relaunched",
        async () => {
          const before = redisServers(dir);
          assertEquals(before.size, 4, `redis-servers ${[...before.keys()]}`);
          const sampler = new MasterSampler(env, "w");
          const writer = new AckedWriter(ms.Master!);
          try {
            await waitFor("200 acknowledged writes", () => writer.acked.size >= 200, {
              timeoutMs: 30_000,
            });
            await sched.terminate!("SIGKILL");
            const n = writer.acked.size;
            await waitFor("writes go on while sched is down", () => writer.acked.size >= n + 100, {
              timeoutMs: 30_000,
            });
            sched = await restart(sched);
            env.sched = sched;
            const after = await waitRunning(sched, "w");
            assertEquals(addresses(after), addresses(ms), "same addresses");
            const m = writer.acked.size;
            await waitFor("writes go on after the restart", () => writer.acked.size >= m + 100, {
              timeoutMs: 30_000,
            });
          } finally {
            await writer.stop();
            await sampler.stopAndCheck();
          }
          acked = writer.acked;
          await assertKeys(ms.Master!, acked);
          console.log(
            `SIGKILL of sched: ${acked.size} writes acknowledged by WAIT 1 1000, 0 lost (${writer.errors} client errors)`,
          );
          // The very same processes: nothing relaunched, no orphan, one cluster.
          assertEquals(redisServers(dir), before, "the same redis-servers (port → pid)");
          assert(
            !/Launching w\.p\d\.2|Launching one\.p1\.2/.test(sched.log()),
            "nothing relaunched",
          );
          const clusters = processesIn(dir).filter((p) => p.cmd.includes("--local-cluster"));
          assertEquals(clusters.length, 1, "one local cluster process");
        },
      );

      await t.step("SIGTERM of sched and a start: every instance back at its address", async () => {
        await sched.terminate!("SIGTERM");
        sched = await restart(sched);
        env.sched = sched;
        assertEquals(addresses(await waitRunning(sched, "w")), addresses(ms));
        assertEquals(addresses(await waitRunning(sched, "one")), addresses(single));
        await assertKeys(ms.Master!, acked);
        await assertKeys(single.Master!, singleKeys);
      });

      await t.step(
        "sched --stop-local stops every process; the next start brings the data back",
        async () => {
          await sched.terminate!("SIGTERM");
          const out = await new Deno.Command(Deno.execPath(), {
            args: [
              "run",
              "-A",
              `${ROOT}cmd/sched.ts`,
              `-config=${dir}/config.json`,
              "--stop-local",
            ],
            cwd: dir,
            stdout: "piped",
            stderr: "piped",
          }).output();
          const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
          assertEquals(out.code, 0, text);
          assert(/Stopped the local Mesos cluster/.test(text), text);
          assertEquals(processesIn(dir), [], "no process left");
          sched = await restart(sched);
          env.sched = sched;
          // STATUS shows the stored view until Mesos has answered: wait for the relaunches.
          await waitFor(
            "every process relaunched and running",
            () =>
              ["w.p1.2", "w.p2.2", "w.p3.2", "one.p1.2"].every((t) =>
                sched.log().includes(`Task ${t} is RUNNING`)
              ),
            { timeoutMs: 60_000 },
          );
          const w = await waitRunning(sched, "w");
          const one = await waitRunning(sched, "one");
          await assertKeys(w.Master!, acked);
          await assertKeys(one.Master!, singleKeys);
          // Relaunched where the data was, on the same ports (they were free).
          assertEquals(addresses(w), addresses(ms));
          assertEquals(addresses(one), addresses(single));
          for (const s of w.Slaves) await assertKeys(s, new Map([...acked].slice(-50)));
        },
      );

      await t.step("DELETE removes the instances' data dirs", async () => {
        const dataDirs = () => {
          const found: string[] = [];
          for (const agent of Deno.readDirSync(`${dir}/local/data`)) {
            for (const d of Deno.readDirSync(`${dir}/local/data/${agent.name}`)) {
              found.push(d.name);
            }
          }
          return found.sort();
        };
        assertEquals(dataDirs().length, 4, `data dirs ${dataDirs()}`);
        await deleteAndWait(sched, "w");
        await deleteAndWait(sched, "one");
        await waitFor("no data dir left", () => dataDirs().length === 0, { timeoutMs: 15_000 });
      });

      await t.step("stopping leaves no process behind", async () => {
        await sched.stop();
        assertEquals(processesIn(dir), []);
      });
    } finally {
      await sched.stop().catch(() => {});
      await stopLocalProcesses(dir);
      if (Deno.env.get("KEEP_TEST_DIR")) console.log(`kept ${dir}`);
      else await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
