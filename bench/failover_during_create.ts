/**
 * A failover while another instance is created on the same agents: SIGKILL
 * of instance `a`'s master (1+2, one process per agent) `delayMs` after the
 * POST of a 1+N create, then the time until a SET on the new master (named
 * by STATUS, polled every 10 ms) is accepted, with its phases from the logs
 * (see `failoverPhases` in `_failover.ts`). Idle failovers (no create) of
 * the same instance shape alternate with them.
 *
 *     deno run -A bench/failover_during_create.ts [samples] [delayMs] [slaves]
 *
 * Not a benchmark (no baseline, no goal): a diagnosis to read next to the
 * failover figures (bench/RESULTS.md, round 18).
 *
 * @module
 */
import {
  create,
  credentials,
  destroy,
  type MrRedis,
  sleep,
  startMrRedis,
  status,
  until,
  waitStatusRunning,
} from "./_harness.ts";
import { type FailoverPhases, failoverPhases, killMaster, tryWrite } from "./_failover.ts";

/** SIGKILL of `name`'s master; ms until the new master took a write, and the phases. */
async function failover(
  mr: MrRedis,
  name: string,
  password: string | undefined,
): Promise<FailoverPhases> {
  const before = await status(mr.api, name);
  if (!before?.Master) throw new Error(`${name} has no master`);
  const oldPort = Number(before.Master.Port);
  await until(
    `${name}'s master to take writes`,
    async () => await tryWrite(oldPort, before.Master!.IP, password) === "ok",
    30_000,
  );
  const { wall, inStatus, firstWrite, noreplicas } = await killMaster(mr, name, oldPort, password);
  await sleep(300); // The last log lines of the failover.
  return await failoverPhases(mr, name, wall, { inStatus, firstWrite, noreplicas });
}

function line(phases: FailoverPhases): string {
  const ms = (x: number) => Number.isNaN(x) ? "?" : x.toFixed(0);
  return `first write ${ms(phases.firstWrite)} ms (task lost ${ms(phases.lost)}, promoting ${
    ms(phases.promoting)
  }, promoted ${ms(phases.promoted)} of which AOF ${ms(phases.aofMs)}, in STATUS ${
    ms(phases.inStatus)
  })`;
}

if (import.meta.main) {
  const samples = Number(Deno.args[0] ?? 3);
  const delayMs = Number(Deno.args[1] ?? 200);
  const slaves = Number(Deno.args[2] ?? 50);
  const dir = await Deno.makeTempDir({ prefix: "mr-redis-failover-create-" });
  const mr = await startMrRedis(dir, { agents: 3, cpus: 64, memMB: 65536 });
  try {
    for (let i = 0; i < samples; i++) {
      for (const busy of [false, true]) {
        const name = `a${i}${busy ? "b" : "i"}`;
        await create(mr.api, name, 10, 2, 1);
        await waitStatusRunning(mr.api, name);
        const password = await credentials(mr.api, name);
        if (busy) {
          await create(mr.api, "new", 10, slaves, 20);
          await sleep(delayMs);
          const phases = await failover(mr, name, password);
          console.log(
            `during a 1+${slaves} create, killed ${delayMs} ms after its POST: ${line(phases)}`,
          );
          await waitStatusRunning(mr.api, "new");
          await destroy(mr.api, "new");
        } else {
          console.log(`idle: ${line(await failover(mr, name, password))}`);
        }
        await destroy(mr.api, name);
      }
    }
  } finally {
    await mr.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
