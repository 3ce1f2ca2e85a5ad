/**
 * The scenario of the detection end-to-end tests around routine Mesos events:
 * a 1+2 instance, a client writing with `WAIT 1 1000` all along, a
 * disturbance of the master's agent; then no promotion (same master, `Epoch`
 * 0), no kill (the same three redis-server processes), no task lost, and
 * every acknowledged write on the master and on every slave.
 *
 * @module
 */
import { assert, assertEquals } from "./_assert.ts";
import { waitFor } from "./_util.ts";
import { redisOf, type Sched, status, type View } from "./_sched.ts";
import { createRunning, type FailoverEnv, logTail, pidOfPort } from "./_failover.ts";

/** A client writing `key:i` one at a time, each followed by `WAIT 1 1000`. */
class AckedWriter {
  readonly acked = new Map<string, string>();
  errors = 0;
  attempts = 0;
  #running = true;
  readonly #loop: Promise<void>;

  constructor(master: NonNullable<View["Master"]>, tag: string) {
    this.#loop = (async () => {
      let r = redisOf(master);
      let i = 0;
      while (this.#running) {
        const key = `${tag}:${i++}`;
        this.attempts++;
        try {
          if (r.status !== "ready") {
            r.disconnect();
            r = redisOf(master);
            await r.connect();
          }
          await r.set(key, key);
          const n = await r.call("WAIT", "1", "1000") as number;
          if (n >= 1) this.acked.set(key, key);
        } catch {
          // Refused (the master's lease self-fence while its agent is away) or cut: not acknowledged.
          this.errors++;
          await new Promise((res) => setTimeout(res, 50));
        }
        await new Promise((res) => setTimeout(res, 10));
      }
      r.disconnect();
    })();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}

/** What {@linkcode quietEventScenario} saw. */
export interface QuietResult {
  attempts: number;
  acked: number;
  errors: number;
}

/**
 * Runs `disturb(agentIndexOfTheMaster)` under a writing client and checks
 * that nothing was failed over, killed or lost.
 */
export async function quietEventScenario(
  env: FailoverEnv,
  name: string,
  disturb: (agent: number) => Promise<void>,
): Promise<QuietResult> {
  const before = await createRunning(env.sched, name, 2);
  const procs = [before.Master!, ...before.Slaves];
  const pids = await Promise.all(procs.map((p) => pidOfPort(p.Port)));
  const writer = new AckedWriter(before.Master!, name);
  try {
    await waitFor("the first acknowledged writes", () => writer.acked.size >= 20, {
      timeoutMs: 30_000,
    });
    await disturb(env.agentOfPort(before.Master!.Port));
    // Writes are acknowledged again after the disturbance.
    const ackedAfter = writer.acked.size;
    await waitFor(
      "acknowledged writes after the disturbance",
      () => writer.acked.size >= ackedAfter + 20,
      {
        timeoutMs: 30_000,
      },
    );
  } finally {
    await writer.stop();
  }
  await assertQuiet(env.sched, name, before, pids);
  for (const p of procs) {
    const r = redisOf(p);
    try {
      await r.connect();
      const keys = [...writer.acked.keys()];
      await waitFor(`every acknowledged key on ${p.Port}`, async () => {
        const got = await r.mget(...keys);
        return got.every((v, i) => v === keys[i]);
      }, { timeoutMs: 15_000, intervalMs: 200 });
    } finally {
      r.disconnect();
    }
  }
  return { attempts: writer.attempts, acked: writer.acked.size, errors: writer.errors };
}

async function assertQuiet(
  sched: Sched,
  name: string,
  before: View,
  pids: number[],
): Promise<void> {
  const after = await waitFor(`${name} RUNNING`, async () => {
    const v = await status(sched, name);
    return v?.Status === "RUNNING" ? v : undefined;
  }, { timeoutMs: 30_000, intervalMs: 200 }).catch((error) => {
    throw new Error(`${(error as Error).message}${logTail(sched)}`);
  });
  const log = sched.log();
  const lost = [...log.matchAll(/^.*Task \S+ of \S+ lost: .*$/gm)].map((m) => m[0]);
  assertEquals(lost, [], `tasks declared lost${logTail(sched)}`);
  assert(!/promoting/.test(log), `a promotion happened${logTail(sched)}`);
  assertEquals(after.Epoch ?? 0, 0, `failed over: ${after.LastEvent}`);
  assertEquals(after.Master?.Port, before.Master!.Port, "the same master");
  const now = await Promise.all([after.Master!, ...after.Slaves].map((p) => pidOfPort(p.Port)));
  assertEquals(now, pids, "the same redis-server processes");
}
