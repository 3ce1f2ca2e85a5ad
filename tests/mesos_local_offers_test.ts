/**
 * Local Mesos master: offers, ACCEPT validation, launches, filters, kill
 * and reconciliation (protocol reference §6 items 9–14, 16–19).
 */

import { BLOCK_SIZE, reservePortRange } from "./_ports.ts";
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import {
  frameworkInfo,
  launch,
  type Msg,
  nextOffer,
  nextUpdate,
  sleepingExecutor,
  startTestCluster,
  subscribe,
  taskInfo,
} from "./_mesos_local.ts";

function scalar(offer: Msg, name: string): number {
  return offer.resources.filter((r: Msg) => r.name === name)
    .reduce((s: number, r: Msg) => s + r.scalar.value, 0);
}

Deno.test("local master validates offers and tasks like Mesos", async (t) => {
  const ports = reservePortRange(2 * BLOCK_SIZE);
  const env = await startTestCluster({
    agents: 1,
    cpus: 2,
    mem: 1024,
    portsBase: ports.base,
    portsPerAgent: ports.size,
  });
  try {
    const sub = await subscribe(env.cluster.url);
    const pa = await subscribe(env.cluster.url, {
      info: frameworkInfo({ name: "pa", capabilities: [{ type: "PARTITION_AWARE" }] }),
      suppressedRoles: ["*"],
    });
    let held: Msg;

    await t.step(
      "item 12 and 14: offers carry url and agent resources, and no allocation_info without MULTI_ROLE",
      async () => {
        const offer = held = await nextOffer(sub);
        assertEquals(offer.allocation_info, undefined);
        assert(offer.resources.every((r: Msg) => r.allocation_info === undefined));
        assertEquals(offer.url.path, "/slave(1)");
        assertEquals(offer.url.address.ip, "127.0.0.1");
        const agent = env.cluster.agent(0);
        assertEquals(offer.agent_id.value, agent.id);
        assertEquals(offer.url.address.port, agent.port);
        assertEquals(scalar(offer, "cpus"), 2);
        assertEquals(scalar(offer, "mem"), 1024);
        const offered = offer.resources.find((r: Msg) => r.name === "ports").ranges.range;
        assertEquals(offered, [{ begin: ports.base, end: ports.base + ports.size - 1 }]);
        assertEquals(offer.hostname, "127.0.0.1");
        assertEquals(offer.executor_ids ?? [], []);
        assertMatch(offer.id.value, new RegExp(`^${env.cluster.masterId}-O\\d+$`));
      },
    );

    await t.step(
      "item 9: unknown, duplicate, used and empty offer ids give TASK_LOST, no uuid, 202",
      async () => {
        const task = (id: string) => taskInfo(id, held, sleepingExecutor("e0"));
        assertEquals(await sub.call(launch(["no-such-offer"], [task("t-unknown")])), 202);
        const u = (await nextUpdate(sub.events, "t-unknown")).update.status;
        assertEquals(u.state, "TASK_LOST");
        assertEquals(u.reason, "REASON_INVALID_OFFERS");
        assertEquals(u.source, "SOURCE_MASTER");
        assertEquals(u.uuid, undefined);
        assertEquals(await sub.call(launch([held.id.value, held.id.value], [task("t-dup")])), 202);
        assertEquals(
          (await nextUpdate(sub.events, "t-dup")).update.status.reason,
          "REASON_INVALID_OFFERS",
        );
        // The valid offer named in the invalid call is used up as well.
        assertEquals(await sub.call(launch([held.id.value], [task("t-used")])), 202);
        assertEquals((await nextUpdate(sub.events, "t-used")).update.status.state, "TASK_LOST");
        assertEquals(await sub.call(launch([], [task("t-empty")])), 202);
        assertEquals((await nextUpdate(sub.events, "t-empty")).update.status.state, "TASK_LOST");
      },
    );

    await t.step(
      "item 9: PARTITION_AWARE frameworks get TASK_DROPPED; foreign offers are invalid",
      async () => {
        const offer = await nextOffer(sub);
        await sub.call({
          type: "DECLINE",
          decline: { offer_ids: [offer.id], filters: { refuse_seconds: 60 } },
        });
        await pa.call({ type: "REVIVE" });
        const paOffer = await nextOffer(pa);
        // Suppressed before its invalid ACCEPT gives the resources back, so
        // they cannot be offered to it again (and held) before the REVIVE
        // of the other framework below.
        await pa.call({ type: "SUPPRESS" });
        assertEquals(
          await pa.call(
            launch([paOffer.id.value, "bogus"], [
              taskInfo("t-pa", paOffer, sleepingExecutor("e0")),
            ]),
          ),
          202,
        );
        const d = (await nextUpdate(pa.events, "t-pa")).update.status;
        assertEquals(d.state, "TASK_DROPPED");
        assertEquals(d.reason, "REASON_INVALID_OFFERS");
        assertEquals(d.uuid, undefined);
        await sub.call({ type: "REVIVE" });
        held = await nextOffer(sub);
        assertEquals(
          await pa.call(
            launch([held.id.value], [taskInfo("t-foreign", held, sleepingExecutor("e0"))]),
          ),
          202,
        );
        assertEquals(
          (await nextUpdate(pa.events, "t-foreign")).update.status.reason,
          "REASON_INVALID_OFFERS",
        );
      },
    );

    await t.step("item 11: invalid tasks get TASK_ERROR REASON_TASK_INVALID", async () => {
      const offer = held; // still valid: the foreign ACCEPT did not use it up
      const ex = sleepingExecutor("e-valid");
      const tasks = [
        taskInfo("a/b", offer, ex),
        taskInfo("wrong-agent", { agent_id: { value: "other" } }, ex),
        taskInfo("both", offer, ex, { command: { value: "true" } }),
        taskInfo("no-resources", offer, ex, { resources: [] }),
        taskInfo("bad-limits", offer, ex, { limits: { disk: { value: 1 } } }),
        taskInfo("low-limits", offer, ex, { limits: { cpus: { value: 0.1 } } }),
        taskInfo("neg-grace", offer, ex, { kill_policy: { grace_period: { nanoseconds: -1 } } }),
        taskInfo("other-fw", offer, sleepingExecutor("e-x", { framework_id: { value: "other" } })),
        taskInfo("too-big", offer, sleepingExecutor("e-big"), {
          resources: [{ name: "cpus", type: "SCALAR", scalar: { value: 100 } }],
        }),
        taskInfo("good", offer, ex),
        taskInfo("good", offer, ex), // duplicate id
        taskInfo(
          "changed-executor",
          offer,
          sleepingExecutor("e-valid", { command: { value: "sleep 61" } }),
        ),
      ];
      assertEquals(await sub.call(launch([offer.id.value], tasks)), 202);
      for (
        const id of [
          "a/b",
          "wrong-agent",
          "both",
          "no-resources",
          "bad-limits",
          "low-limits",
          "neg-grace",
          "other-fw",
          "too-big",
        ]
      ) {
        const u = (await nextUpdate(sub.events, id, "TASK_ERROR")).update.status;
        assertEquals(u.reason, "REASON_TASK_INVALID", id);
        assertEquals(u.uuid, undefined);
      }
      const dup = await nextUpdate(sub.events, "good", "TASK_ERROR");
      assertMatch(dup.update.status.message, /duplicate/);
      assertMatch(
        (await nextUpdate(sub.events, "changed-executor", "TASK_ERROR")).update.status.message,
        /differs/,
      );
      assertEquals(env.cluster.taskState(sub.frameworkId, "good"), "TASK_STAGING");
    });

    await t.step(
      "item 10: tasks are applied in order against the pooled offers; executor charged once",
      async () => {
        await sub.call({ type: "REVIVE" });
        const offer = await nextOffer(sub);
        const cpus = scalar(offer, "cpus");
        assertEquals(offer.executor_ids, [{ value: "e-valid" }]);
        const ex = sleepingExecutor("e-pool"); // 0.1 cpus, new on this agent
        const per = Math.floor(((cpus - 0.1) / 2) * 1000) / 1000;
        const res = (c: number) => [{ name: "cpus", type: "SCALAR", scalar: { value: c } }];
        assertEquals(
          await sub.call(launch([offer.id.value], [
            taskInfo("p1", offer, ex, { resources: res(per) }),
            taskInfo("p2", offer, ex, { resources: res(per) }),
            taskInfo("p3", offer, ex, { resources: res(per) }),
          ])),
          202,
        );
        const u = await nextUpdate(sub.events, "p3", "TASK_ERROR");
        assertMatch(u.update.status.message, /more resources/);
        assertEquals(env.cluster.taskState(sub.frameworkId, "p1"), "TASK_STAGING");
        assertEquals(env.cluster.taskState(sub.frameworkId, "p2"), "TASK_STAGING");
      },
    );

    await t.step(
      "item 19: KILL of a queued task is TASK_KILLED from the agent; of an unknown task a reconciliation",
      async () => {
        assertEquals(await sub.call({ type: "KILL", kill: { task_id: { value: "p1" } } }), 202);
        const k = (await nextUpdate(sub.events, "p1", "TASK_KILLED")).update.status;
        assertEquals(k.source, "SOURCE_AGENT");
        assertEquals(k.uuid.length, 16);
        assertEquals(await sub.call({ type: "KILL", kill: { task_id: { value: "never" } } }), 202);
        const r = (await nextUpdate(sub.events, "never")).update.status;
        assertEquals(r.state, "TASK_LOST"); // TASK_UNKNOWN for partition-aware frameworks
        assertEquals(r.reason, "REASON_RECONCILIATION");
        assertEquals(r.uuid, undefined);
      },
    );

    await t.step(
      "item 17: the master forgets a task only after its terminal update is acknowledged",
      async () => {
        const k = (await sub.events.events.find((e) =>
          e.type === "UPDATE" && e.update.status.task_id.value === "p1"
        ))
          .update.status;
        assertEquals(env.cluster.taskState(sub.frameworkId, "p1"), "TASK_KILLED");
        assertEquals(
          await sub.call({
            type: "ACKNOWLEDGE",
            acknowledge: { agent_id: k.agent_id, task_id: k.task_id, uuid: k.uuid },
          }),
          202,
        );
        assertEquals(env.cluster.taskState(sub.frameworkId, "p1"), undefined);
      },
    );

    await t.step("item 18: explicit and implicit reconciliation", async () => {
      const agentId = env.cluster.agent(0).id;
      await pa.call({
        type: "RECONCILE",
        reconcile: {
          tasks: [
            { task_id: { value: "gone" }, agent_id: { value: agentId } },
            { task_id: { value: "unknown-agent" }, agent_id: { value: "no-such-agent" } },
          ],
        },
      });
      assertEquals((await nextUpdate(pa.events, "gone")).update.status.state, "TASK_GONE");
      assertEquals(
        (await nextUpdate(pa.events, "unknown-agent")).update.status.state,
        "TASK_UNKNOWN",
      );
      await sub.call({ type: "RECONCILE", reconcile: { tasks: [] } });
      const p2 = (await nextUpdate(sub.events, "p2")).update.status;
      assertEquals(p2.state, "TASK_STAGING");
      assertEquals(p2.reason, "REASON_RECONCILIATION");
      assertEquals(p2.source, "SOURCE_MASTER");
      assertEquals(p2.uuid, undefined);
    });

    await t.step(
      "item 13: DECLINE filters the agent; REVIVE clears; SUPPRESS stops offers",
      async () => {
        await pa.call({ type: "SUPPRESS" });
        const offer = await nextOffer(sub);
        const agentId = offer.agent_id.value;
        await sub.call({
          type: "DECLINE",
          decline: { offer_ids: [offer.id], filters: { refuse_seconds: 60 } },
        });
        // Other agents may still be offered, this one not while the filter holds.
        const start = sub.events.events.length;
        await new Promise((r) =>
          setTimeout(r, 400)
        );
        const later = sub.events.events.slice(start).filter((e) => e.type === "OFFERS");
        assert(later.every((e) => e.offers.offers.every((o: Msg) => o.agent_id.value !== agentId)));
        await sub.call({ type: "REVIVE" });
        await nextOffer(sub, agentId, 2000);
        // SUPPRESS: the suppressed framework saw no offers.
        const paStart = pa.events.events.length;
        await new Promise((r) => setTimeout(r, 300));
        assert(pa.events.events.slice(paStart).every((e) => e.type !== "OFFERS"));
      },
    );

    await pa.close();
    await sub.close();
  } finally {
    await env.close();
    ports.release();
  }
});
