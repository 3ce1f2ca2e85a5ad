/**
 * End to end on the embedded default (`Master: "local:3"`): 100 CREATE
 * requests at once (single instances of 1 MB) load the machine while an idle
 * 1+2 instance runs. Slowness under load is not death: the idle instance is
 * never failed over (same three redis-servers, `Epoch` 0, no `LastEvent`),
 * and no healthy process anywhere is killed or declared lost (the scheduler's
 * log has no "lost" line, no executor log says a redis-server stopped
 * answering). The burst's redis-servers spread over the three equal agents:
 * no agent gets more than half of them (offers come back one agent at a
 * time; placed on the offers at hand alone, one agent once took nearly all).
 */
import { assert, assertEquals } from "./_assert.ts";
import { tempDir } from "./_util.ts";
import { create, redisPids, startSched, status, waitAllRunning, waitRunning } from "./_sched.ts";

const BURST = 100;

/** Agent id → redis processes of the burst (first launches) the scheduler's log places there. */
function burstRedisPerAgent(log: string): Record<string, number> {
  const perAgent: Record<string, number> = {};
  const seen = new Set<string>();
  for (const m of log.matchAll(/Launching (burst-\d+\.p\d+)\.\d+ .* agent (\S+)$/gm)) {
    if (seen.has(m[1]!)) continue;
    seen.add(m[1]!);
    perAgent[m[2]!] = (perAgent[m[2]!] ?? 0) + 1;
  }
  return perAgent;
}

/** Every executor stderr file under `dir` (the local cluster's sandboxes). */
async function executorLogs(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (path: string) => {
    for await (const e of Deno.readDir(path)) {
      const p = `${path}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (e.name === "stderr") out.push(await Deno.readTextFile(p).catch(() => ""));
    }
  };
  await walk(dir).catch(() => {});
  return out;
}

Deno.test({
  name: "a burst of 100 CREATEs fails over no idle instance and kills no healthy process",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await tempDir("e2e-burst");
    const sched = await startSched({
      dir,
      dbType: "embedded",
      master: "local:3",
    });
    try {
      assertEquals((await create(sched, "idle", 20, 2)).status, 201);
      const idle = await waitRunning(sched, "idle", 90_000);
      const ports = [idle.Master!, ...idle.Slaves].map((p) => p.Port);
      const pids = await Promise.all(ports.map(async (port) => (await redisPids(port))[0]));
      assert(pids.every((p) => p !== undefined), `pids of idle: ${pids}`);

      const names = Array.from({ length: BURST }, (_, i) => `burst-${i}`);
      // No proxies: 100 singles with theirs (0.1 + 0.05 cpus each, plus the idle instance and
      // the executors) would need 15.7 cpus of the 3 agents' 12, and proxies placed early take
      // what later singles need. Without them the burst fits (10.7 cpus).
      const answers = await Promise.all(
        names.map((n) => create(sched, n, 1, 0, { Proxies: 0 })),
      );
      assertEquals(answers.map((a) => a.status), names.map(() => 201));
      const started = Date.now();
      await waitAllRunning(sched, "burst-", BURST);
      console.log(
        `${BURST} instances RUNNING ${Date.now() - started} ms after the burst (load average ${
          Deno.loadavg()[0]!.toFixed(1)
        })`,
      );
      const spread = burstRedisPerAgent(sched.log());
      const total = Object.values(spread).reduce((a, b) => a + b, 0);
      console.log(`burst redis-servers per agent: ${JSON.stringify(spread)}`);
      assert(total >= BURST, `${total} burst redis-servers launched: ${JSON.stringify(spread)}`);
      assert(
        Object.values(spread).every((n) => n <= total / 2),
        `no agent takes more than half of the burst's ${total} redis-servers: ${
          JSON.stringify(spread)
        }`,
      );
      // Detection that lags the load shows up now, if at all: give it time.
      await new Promise((r) => setTimeout(r, 5_000));

      const log = sched.log();
      const lost = [...log.matchAll(/^.*Task \S+ of \S+ lost: .*$/gm)].map((m) => m[0]);
      const hung = (await executorLogs(`${dir}/local`)).flatMap((text) =>
        text.split("\n").filter((l) => /stopped answering/.test(l))
      );
      const after = await status(sched, "idle");
      const stillThere = await Promise.all(ports.map(async (port) => (await redisPids(port))[0]));
      console.log(
        `false positives: ${lost.length} task(s) declared lost, ${hung.length} redis-server(s) killed as hung, idle epoch ${after?.Epoch}`,
      );
      if (lost.length) console.log(lost.slice(0, 8).join("\n"));
      assertEquals(lost, [], "healthy tasks declared lost");
      assertEquals(hung, [], "healthy redis-servers killed as hung");
      assertEquals(after?.Epoch ?? 0, 0, `the idle instance failed over: ${after?.LastEvent}`);
      assertEquals(after?.LastEvent ?? null, null);
      assertEquals(stillThere, pids, "the idle instance's redis-servers are the same processes");
      assertEquals(after?.Status, "RUNNING");
    } finally {
      await sched.stop();
      if (!Deno.env.get("KEEP")) await Deno.remove(dir, { recursive: true }).catch(() => {});
      else console.log(dir);
    }
  },
});
