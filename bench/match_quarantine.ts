/**
 * How long one placement pass (`match`) takes for 1 master + 50 slaves on
 * 3 offers of 1001 ports each, with 0, 100 and 900 ports of each agent in
 * the port quarantine (used by other instances in the last 10 minutes, as
 * after a day of creates and deletes). The scheduler's event loop is busy
 * for that long on every pass.
 *
 *     deno run -A bench/match_quarantine.ts
 *
 * A diagnosis with no goal; medians of 30 passes.
 *
 * @module
 */
import { match, type PendingProcess } from "../lib/scheduler/match.ts";
import type { Offer } from "../lib/mesos/types.ts";
import { median } from "./_harness.ts";

const AGENTS = ["a0", "a1", "a2"];
const offers = AGENTS.map((agent, i) => ({
  id: { value: `o${i}` },
  agent_id: { value: agent },
  framework_id: { value: "f" },
  hostname: `h${i}`,
  resources: [
    { name: "cpus", type: "SCALAR", scalar: { value: 64 } },
    { name: "mem", type: "SCALAR", scalar: { value: 65536 } },
    { name: "ports", type: "RANGES", ranges: { range: [{ begin: 31000, end: 32000 }] } },
  ],
})) as unknown as Offer[];
const pending: PendingProcess[] = Array.from({ length: 51 }, (_, i) => ({
  instance: "new",
  procId: `p${i + 1}`,
  role: i === 0 ? "master" : "slave",
  capacityMB: 10,
  distribution: 20,
  instanceSize: 51,
  ...(i === 0 ? {} : { masterProcId: "p1" }),
}));

for (const reserved of [0, 100, 900]) {
  const quarantine = new Map<string, { instance: string; until: number }>();
  for (const agent of AGENTS) {
    for (let port = 31000; port < 31000 + reserved; port++) {
      quarantine.set(`${agent}:${port}`, {
        instance: `old${port % 40}`,
        until: Date.now() + 600_000,
      });
    }
  }
  const times: number[] = [];
  let placed = 0;
  for (let i = 0; i < 30; i++) {
    const started = performance.now();
    const result = match(pending, offers, {}, { executorId: "mrr-executor", quarantine });
    times.push(performance.now() - started);
    placed = result.launches.reduce((n, l) => n + l.tasks.length, 0);
  }
  console.log(
    `${reserved} ports of each agent quarantined: ${placed} of 51 placed in ${
      median(times).toFixed(2)
    } ms (median of 30)`,
  );
}
