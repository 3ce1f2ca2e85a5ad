/**
 * UPDATE's answers to bad and borderline input, on the real `sched` with the
 * local cluster: types, ranges, unknown fields, unknown names, a shrink below
 * the data, a change while the instance is created, and the type changes
 * S → MS and MS → S (both accepted: done by rolling replacement, one
 * promotion each).
 */
import { assert, assertEquals } from "./_assert.ts";
import { tempDir, waitFor } from "./_util.ts";
import { create, deleteAndWait, startSched, status, waitRunning, withRedis } from "./_sched.ts";
import { update, type UpdateView, waitUpdated } from "./_update.ts";

Deno.test({
  name: "UPDATE answers bad input with one line naming the problem, and S ↔ MS by replacement",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await tempDir("e2e-update-input");
    const sched = await startSched({ dir, dbType: "embedded", master: "local:3" });
    try {
      assertEquals((await create(sched, "one", 20, 0)).status, 201);
      assertEquals((await create(sched, "two", 20, 1)).status, 201);
      await waitRunning(sched, "one", 90_000);
      await waitRunning(sched, "two", 90_000);

      // Refusals wait until the scheduler knows its agents well: wait until a
      // CREATE no agent could hold is refused (one that got in is deleted).
      await waitFor("the scheduler to refuse what no agent can hold", async () => {
        const answer = await create(sched, "huge", 50_000, 0);
        if (answer.status === 201) await deleteAndWait(sched, "huge");
        return answer.status === 409;
      }, { timeoutMs: 60_000, intervalMs: 500 });

      await t.step("the bad-input table", async () => {
        const table: [string, string, unknown, number, RegExp][] = [
          ["unknown name", "nope", { Slaves: 2 }, 404, /^Instance "nope" not found$/],
          ["bad name", "a.b", { Slaves: 2 }, 400, /^Field "name" must be 1 to 64 letters/],
          [
            "no body",
            "two",
            "",
            400,
            /^Body must be a JSON object with at least one of Capacity, Slaves, Distribution, Proxies$/,
          ],
          ["not JSON", "two", "{Slaves: 2", 400, /^Body must be a JSON object: /],
          ["an array", "two", "[1]", 400, /^Body must be a JSON object, but got "\[1\]"$/],
          [
            "empty object",
            "two",
            {},
            400,
            /^Body must name at least one of Capacity, Slaves, Distribution, Proxies/,
          ],
          [
            "unknown field",
            "two",
            { slaves: 2 },
            400,
            /^Body field "slaves" is unknown \(did you mean "Slaves"\?\); known fields: Capacity, Slaves, Distribution, Proxies$/,
          ],
          [
            "misspelt field",
            "two",
            { Capacty: 50 },
            400,
            /^Body field "Capacty" is unknown \(did you mean "Capacity"\?\)/,
          ],
          [
            "far-off field",
            "two",
            { Memory: 50 },
            400,
            /^Body field "Memory" is unknown; known fields/,
          ],
          [
            "a string number",
            "two",
            { Slaves: "2" },
            400,
            /^Field "Slaves" must be a whole JSON number from 0 to 100 \(not a string\), but got "2"$/,
          ],
          [
            "negative slaves",
            "two",
            { Slaves: -1 },
            400,
            /^Field "Slaves" must be a whole JSON number from 0 to 100 .*but got -1$/,
          ],
          ["too many slaves", "two", { Slaves: 101 }, 400, /^Field "Slaves" .*but got 101$/],
          [
            "fractional capacity",
            "two",
            { Capacity: 1.5 },
            400,
            /^Field "Capacity" must be a whole JSON number from 1 to 65536 .*but got 1.5$/,
          ],
          ["zero capacity", "two", { Capacity: 0 }, 400, /^Field "Capacity" .*but got 0$/],
          [
            "capacity too large",
            "two",
            { Capacity: 65537 },
            400,
            /^Field "Capacity" .*but got 65537$/,
          ],
          ["null capacity", "two", { Capacity: null }, 400, /^Field "Capacity" .*but got null$/],
          [
            "zero Distribution",
            "two",
            { Distribution: 0 },
            400,
            /^Field "Distribution" must be a whole JSON number from 1 to 100 .*but got 0$/,
          ],
          [
            "too many Proxies",
            "two",
            { Proxies: 17 },
            400,
            /^Field "Proxies" must be a whole JSON number from 0 to 16 .*but got 17$/,
          ],
          [
            "no room for the result",
            "two",
            { Slaves: 3 },
            409,
            /^Cannot update instance "two": its 4 processes of 20 MB need at least 4 agents at Distribution 1/,
          ],
          [
            "nothing to change",
            "two",
            { Capacity: 20, Slaves: 1 },
            200,
            /^Instance "two" already has that shape; nothing to change\.$/,
          ],
        ];
        for (const [what, name, body, code, text] of table) {
          const answer = await update(sched, name, body);
          assertEquals(answer.status, code, `${what}: ${answer.text}`);
          assert(text.test(answer.text), `${what}: ${answer.text}`);
          assert(!answer.text.includes("\n"), `${what}: one line`);
        }
        const post = await sched.api("/v1/UPDATE/two", { method: "POST", body: "{}" });
        assertEquals(post.status, 405);
        assertEquals(
          (await post.text()).trim(),
          "Method POST is not allowed on /v1/UPDATE; use PUT",
        );
      });

      await t.step("a shrink below the data is refused naming the used memory", async () => {
        const view = (await status(sched, "two"))!;
        await withRedis(view.Master!, (r) => r.set("big", "x".repeat(3 * 1024 * 1024)));
        await waitFor("STATUS to show the data", async () => {
          const v = await status(sched, "two");
          return (v?.Master as { MemoryUsed?: number } | null)?.MemoryUsed! > 3 * 1024 * 1024;
        }, { timeoutMs: 30_000, intervalMs: 200 });
        const answer = await update(sched, "two", { Capacity: 2 });
        assertEquals(answer.status, 409, answer.text);
        assert(
          /^Cannot resize instance "two" to 2 MB: it holds \d+\.\d MB of data \(used_memory \d+ bytes\)$/
            .test(answer.text),
          answer.text,
        );
      });

      await t.step("an instance still being created is not updated", async () => {
        assertEquals((await create(sched, "fresh", 20, 0)).status, 201);
        const answer = await update(sched, "fresh", { Capacity: 30 });
        assertEquals(answer.status, 409, answer.text);
        assertEquals(
          answer.text,
          'Instance "fresh" is still being created; update it once it is RUNNING',
        );
        await waitRunning(sched, "fresh", 90_000);
        await deleteAndWait(sched, "fresh");
      });

      await t.step("S → MS is accepted: replaced by MS processes, one promotion", async () => {
        const answer = await update(sched, "one", { Slaves: 1 });
        assertEquals(answer.status, 202, answer.text);
        const again = await update(sched, "one", { Slaves: 2 });
        assertEquals(again.status, 409, again.text);
        const view = await waitUpdated(() => sched, "one", 1);
        assertEquals(view.Type, "MS");
        assertEquals(view.Epoch, 1);
        await withRedis(view.Master!, async (r) => {
          assertEquals(await r.set("k", "v"), "OK");
          assertEquals(await r.call("WAIT", "1", "5000"), 1, "the slave acknowledges");
        });
      });

      await t.step("MS → S is accepted: replaced by a single server, one promotion", async () => {
        const answer = await update(sched, "two", { Slaves: 0 });
        assertEquals(answer.status, 202, answer.text);
        const view = (await waitUpdated(() => sched, "two", 0)) as UpdateView;
        assertEquals(view.Type, "S");
        assertEquals(view.SlavesWanted, 0);
        assertEquals(view.Epoch, 1);
        await withRedis(view.Master!, async (r) => {
          assertEquals((await r.get("big"))?.length, 3 * 1024 * 1024, "the data moved along");
          assertEquals(await r.set("k", "v"), "OK", "a single server takes writes alone");
        });
      });
      await deleteAndWait(sched, "one");
      await deleteAndWait(sched, "two");
    } finally {
      await sched.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
