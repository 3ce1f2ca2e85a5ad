/**
 * The floor of any Deno executor: how long 1 master + N slaves take when
 * three Deno processes (one per agent, as the executors are) start them with
 * their output piped and watch their logs for ready and in sync, with nothing
 * of Mesos (no scheduler, no master, no agent, no status updates, no store),
 * against the direct parallel start of `deno task bench` in the same run.
 *
 *     deno run -A bench/executor_floor.ts [slaves] [rounds] [--info]
 *
 * Per round, alternating: the direct start; "warm" (the three workers
 * already running, timed from the first batch written to them); "cold" (the
 * time includes starting the three workers). The master goes to the first
 * worker; the slaves go round the three once the master accepts connections
 * (the executors too hold a slave until its master listens). `--info` makes
 * the workers also read INFO once from each server (a monitor's first
 * check). Prints the medians and the ratios to the direct start.
 *
 * A diagnosis, not a benchmark with a goal: what mr-redis adds over the warm
 * and cold figures here is the cost of Mesos (the status updates through
 * agent, master and scheduler, the store, the planning), and what these
 * figures add over the direct start is the cost of a Deno process per agent.
 *
 * @module
 */
import { baselineMasterSlaves, median, mrCreateMasterSlaves } from "./_create.ts";
import { floorStart } from "./_floor.ts";
import { startMrRedis } from "./_harness.ts";

const args = Deno.args.filter((a) => !a.startsWith("--"));
const slaves = Number(args[0] ?? 50);
const rounds = Number(args[1] ?? 5);
const withInfo = Deno.args.includes("--info");
const AGENTS = 3;
/** As `deno task bench` places 1+50: a third of the slaves per agent, and some room. */
const DISTRIBUTION = Math.ceil(slaves / AGENTS) + 3;

/** One start through three workers; `cold` counts their start-up. */
async function viaWorkers(cold: boolean): Promise<number> {
  const { seconds, cpuSeconds } = await floorStart(slaves, { cold, agents: AGENTS, withInfo });
  (cold ? coldCpu : warmCpu).push(cpuSeconds);
  return seconds;
}

const direct: number[] = [];
const warm: number[] = [];
const cold: number[] = [];
const warmCpu: number[] = [];
const coldCpu: number[] = [];
const mr: number[] = [];
const mrDir = await Deno.makeTempDir({ prefix: "mr-redis-floor-mr-" });
const mrRedis = await startMrRedis(mrDir, { agents: AGENTS, cpus: 64, memMB: 65536 });
try {
  await mrCreateMasterSlaves(mrRedis, "warmup", slaves, DISTRIBUTION);
  for (let round = 0; round < rounds; round++) {
    direct.push(await baselineMasterSlaves(slaves));
    warm.push(await viaWorkers(false));
    cold.push(await viaWorkers(true));
    mr.push(
      await mrCreateMasterSlaves(mrRedis, `r${round}`, slaves, DISTRIBUTION),
    );
    console.log(
      `round ${round + 1}: direct ${direct.at(-1)!.toFixed(3)} s; workers warm ${
        warm.at(-1)!.toFixed(3)
      } s, cold ${cold.at(-1)!.toFixed(3)} s; mr-redis warm ${mr.at(-1)!.toFixed(3)} s`,
    );
  }
} finally {
  await mrRedis.stop();
  await Deno.remove(mrDir, { recursive: true }).catch(() => {});
}
const d = median(direct);
const workers = `${AGENTS} Deno workers${withInfo ? " (one INFO each)" : ""}`;
const ratio = (values: number[]) =>
  `${median(values).toFixed(3)} s, ${(median(values) / d).toFixed(2)}×`;
console.log(
  `1 master + ${slaves} slaves, direct parallel start ${d.toFixed(3)} s (median of ${rounds})\n` +
    `  ${workers}, warm: ${ratio(warm)}; ` +
    `their CPU ${median(warmCpu).toFixed(2)} s\n` +
    `  ${workers}, cold: ${ratio(cold)}; ` +
    `their CPU ${median(coldCpu).toFixed(2)} s\n` +
    `  mr-redis (${AGENTS} local agents), warm create: ${ratio(mr)}`,
);
