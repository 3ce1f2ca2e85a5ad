/**
 * End to end, the way a user works: a real scheduler process (`cmd/sched.ts`
 * on the local Mesos cluster and the embedded store) and the real `mrr`
 * process against it.
 */

import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { runMrr, show } from "./_mrr.ts";
import { tempDir } from "./_util.ts";
import { startSched } from "./_sched.ts";

Deno.test({
  name: "mrr drives a real scheduler: init, create -w, status, delete -w",
  async fn(t) {
    const dir = await tempDir("mrr-e2e");
    const config = `${dir}/mrr.json`;
    const sched = await startSched({
      dir,
      dbType: "embedded",
      master: "local",
    });
    /** Runs mrr; throws unless it exits with `code` (any code when `null`). */
    const mrr = async (args: string[], code: number | null = 0) => {
      const r = await runMrr(config, args);
      if (code !== null && r.code !== code) {
        throw new Error(
          `mrr ${args.join(" ")}: expected exit ${code}\n${show(r)}\n--- sched log (tail)\n${
            sched.log().split("\n").slice(-40).join("\n")
          }`,
        );
      }
      return r;
    };
    try {
      await t.step("init", async () => {
        const r = await mrr(["init", sched.url]);
        assertMatch(r.stdout, /answers \(0 instances\); saved in /);
      });

      await t.step("create -w a single server", async () => {
        const r = await mrr(["create", "-n", "e2e-s", "-m", "50", "-w", "--timeout", "2m"]);
        assertMatch(
          r.stdout,
          /Instance "e2e-s" is RUNNING \(1 of 1 processes\), master at \S+:\d+/,
        );
      });

      await t.step("create -w a master with two slaves", async () => {
        const r = await mrr(["create", "-n", "e2e-ms", "-m", "50", "-s", "2", "-w"]);
        assertMatch(
          r.stdout,
          /Instance "e2e-ms" is RUNNING \(3 of 3 processes\), master at \S+:\d+/,
        );
      });

      await t.step("create of an existing name is refused with 409", async () => {
        const r = await mrr(["create", "-n", "e2e-s", "-m", "50"], 1);
        assertEquals(r.stderr.split("\n")[0], 'Error: instance "e2e-s" already exists (409)');
      });

      await t.step("create of an instance no agent could hold is refused with 409", async () => {
        // Refusals wait until the scheduler knows its agents; until then the
        // CREATE is accepted (and waits for resources): delete and try again.
        const deadline = Date.now() + 60_000;
        let r = await mrr(["create", "-n", "e2e-huge", "-m", "5000"], null);
        while (r.code === 0 && Date.now() < deadline) {
          await mrr(["delete", "-n", "e2e-huge", "-w"]);
          await new Promise((resolve) => setTimeout(resolve, 500));
          r = await mrr(["create", "-n", "e2e-huge", "-m", "5000"], null);
        }
        assertEquals(r.code, 1, show(r));
        assertMatch(
          r.stderr.split("\n")[0]!,
          /^Error: the scheduler refused the request: Cannot create instance "e2e-huge": one process needs an agent with 5096 MB .* the largest has 4096 MB.* \(409\)$/,
        );
        const wide = await mrr(["create", "-n", "e2e-wide", "-m", "10", "-s", "3"], 1);
        assertMatch(wide.stderr, /need at least 4 agents at Distribution 1.*can hold at most 3/);
      });

      await t.step("status text", async () => {
        const single = await mrr(["status", "-n", "e2e-s"]);
        const s = single.stdout.trimEnd().split("\n");
        assertEquals(s.slice(0, 3), ["Status = RUNNING", "Type = S", "Capacity = 50"]);
        assertMatch(s[3]!, /^Master = \S+:\d+$/);
        // Then its proxy once it runs (1 for a single server).
        assert(
          s.length <= 5 && s.slice(4).every((l) => /^Proxy0 = \S+:\d+$/.test(l)),
          show(single),
        );

        const ms = await mrr(["status", "-n", "e2e-ms"]);
        const lines = ms.stdout.trimEnd().split("\n");
        assertEquals(lines.slice(0, 3), ["Status = RUNNING", "Type = MS", "Capacity = 50"]);
        assertMatch(lines[3]!, /^Master = \S+:\d+$/);
        assertMatch(lines[4]!, /^\tSlave0 = \S+:\d+$/);
        assertMatch(lines[5]!, /^\tSlave1 = \S+:\d+$/);
        // Then its running proxies (2 for a master with slaves).
        assert(
          lines.length <= 8 && lines.slice(6).every((l) => /^Proxy[01] = \S+:\d+$/.test(l)),
          show(ms),
        );
      });

      await t.step("the master accepts connections", async () => {
        const r = await mrr(["status", "-n", "e2e-ms", "--json"]);
        const instance = JSON.parse(r.stdout);
        const conn = await Deno.connect({
          hostname: instance.Master.IP,
          port: Number(instance.Master.Port),
        });
        conn.close();
      });

      await t.step("status table", async () => {
        const r = await mrr(["status"]);
        const lines = r.stdout.trimEnd().split("\n");
        assertMatch(lines[0]!, /^NAME\s+TYPE\s+STATUS\s+CAPACITY\s+MASTER\s+SLAVES$/);
        assertMatch(lines[1]!, /^e2e-ms\s+MS\s+RUNNING\s+50\s+\S+:\d+\s+2$/);
        assertMatch(lines[2]!, /^e2e-s\s+S\s+RUNNING\s+50\s+\S+:\d+\s+0$/);
        assertEquals(lines.length, 3, show(r));
      });

      await t.step("status --json has the contract fields", async () => {
        const r = await mrr(["status", "-n", "e2e-ms", "--json"]);
        const instance = JSON.parse(r.stdout);
        assertEquals(
          [instance.Name, instance.Type, instance.Status, instance.Capacity],
          ["e2e-ms", "MS", "RUNNING", 50],
        );
        assertEquals(typeof instance.Master.Port, "string");
        assertEquals(typeof instance.Master.IP, "string");
        assertEquals(instance.Slaves.length, 2);
        const all = JSON.parse((await mrr(["status", "--json"])).stdout);
        assertEquals(all.map((i: { Name: string }) => i.Name).sort(), ["e2e-ms", "e2e-s"]);
      });

      await t.step("update -w scales a master with two slaves down to one", async () => {
        const r = await mrr(["update", "-n", "e2e-ms", "-s", "1", "-w", "--timeout", "2m"]);
        assertMatch(r.stdout, /^Updating instance "e2e-ms": 1 slave\n/);
        assertMatch(
          r.stdout,
          /Instance "e2e-ms" is updated and RUNNING: 50 MB, 1 slave, master at \S+:\d+\n$/,
        );
        const same = await mrr(["update", "-n", "e2e-ms", "-s", "1"]);
        assertMatch(
          same.stdout,
          /Instance "e2e-ms" already has that shape; nothing to change\.\n$/,
        );
        const proxies = await mrr(["update", "-n", "e2e-ms", "-p", "1"]);
        assertMatch(proxies.stdout, /^Updating instance "e2e-ms": 1 proxy\nRequest accepted/);
        const json = JSON.parse((await mrr(["status", "-n", "e2e-ms", "--json"])).stdout);
        assertEquals(json.ProxiesWanted, 1);
        const unknown = await mrr(["update", "-n", "e2e-nope", "-s", "1"], 1);
        assertEquals(
          unknown.stderr.split("\n")[0],
          'Error: instance "e2e-nope" does not exist (404)',
        );
      });

      await t.step("delete -w both", async () => {
        for (const name of ["e2e-ms", "e2e-s"]) {
          const r = await mrr(["delete", "-n", name, "-w", "--timeout", "1m"]);
          assertMatch(r.stdout, new RegExp(`Instance "${name}" deleted\\n$`));
          const gone = await mrr(["status", "-n", name], 1);
          assertEquals(
            gone.stderr.split("\n")[0],
            `Error: instance "${name}" does not exist (404)`,
          );
        }
        const empty = await mrr(["status"]);
        assertEquals(empty.stdout, "");
        assert(empty.stderr.startsWith("No instances"), show(empty));
      });
    } finally {
      await sched.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
