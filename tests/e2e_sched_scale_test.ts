/**
 * End to end on the local cluster (embedded store): Distribution is enforced
 * across agents, and a burst of 70 CREATE requests is served exactly once.
 */
import { assert, assertEquals } from "./_assert.ts";
import { tempDir, waitFor } from "./_util.ts";
import {
  create,
  deleteAndWait,
  LOCAL_PORTS_PER_AGENT,
  startSched,
  status,
  statusList,
  waitAllRunning,
  waitRunning,
} from "./_sched.ts";

Deno.test({
  name: "1 master + 5 slaves with Distribution 2 on 3 agents puts at most 2 on an agent",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await tempDir("e2e-dist");
    const sched = await startSched({
      dir,
      dbType: "embedded",
      master: "local:3",
    });
    try {
      assertEquals((await create(sched, "spread", 20, 5, { Distribution: 2 })).status, 201);
      const view = await waitRunning(sched, "spread", 90_000);
      assertEquals(view.Slaves.length, 5);
      // Agents of the local cluster share 127.0.0.1; the process ids tell the agents
      // apart only through the store, so count by the agent id the log reports.
      const log = sched.log();
      const perAgent: Record<string, number> = {};
      for (const m of log.matchAll(/Launching spread\.p\d+\.\d+ \(\w+\) on \S+ agent (\S+)/g)) {
        perAgent[m[1]!] = (perAgent[m[1]!] ?? 0) + 1;
      }
      assertEquals(Object.values(perAgent).reduce((a, b) => a + b, 0), 6, JSON.stringify(perAgent));
      assert(Object.values(perAgent).every((n) => n <= 2), JSON.stringify(perAgent));
      await deleteAndWait(sched, "spread");
    } finally {
      await sched.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "70 CREATE requests at once are all created exactly once and RUNNING",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await tempDir("e2e-70");
    const sched = await startSched({
      dir,
      dbType: "embedded",
      master: "local:3",
      // 70 singles and their proxies need 140 ports: room for every one.
      localPortsPerAgent: 2 * LOCAL_PORTS_PER_AGENT,
    });
    try {
      const names = Array.from({ length: 70 }, (_, i) => `burst-${i}`);
      const answers = await Promise.all(names.map((n) => create(sched, n, 1, 0)));
      assertEquals(answers.map((a) => a.status), names.map(() => 201));
      // A second round of the same names: all 409.
      const again = await Promise.all(names.slice(0, 10).map((n) => create(sched, n, 1, 0)));
      assertEquals(again.map((a) => a.status), names.slice(0, 10).map(() => 409));
      await waitAllRunning(sched, "burst-", 70);
      const all = await statusList(sched);
      assertEquals(all.map((v) => v.Name).sort(), [...names].sort());
      const addresses = new Set(all.map((v) => `${v.Master!.IP}:${v.Master!.Port}`));
      assertEquals(addresses.size, 70, "every instance has its own port");
      // Exactly one launch per instance.
      const launches = [...sched.log().matchAll(/Launching (burst-\d+)\.p1\.(\d+)/g)];
      const lost = sched.log().split("\n").filter((l) => / lost: /.test(l)).map((l) =>
        l.slice(0, 300)
      );
      assertEquals(launches.length, 70, `relaunches after:\n${lost.join("\n")}`);
      assertEquals((await status(sched, "burst-0"))?.Status, "RUNNING");
      await Promise.all(names.map((n) =>
        fetch(`${sched.url}/v1/DELETE/${n}`, { method: "DELETE" })
          .then((r) => r.body?.cancel())
      ));
      await waitFor("all deleted", async () => (await statusList(sched)).length === 0, {
        timeoutMs: 60_000,
      });
    } finally {
      await sched.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
