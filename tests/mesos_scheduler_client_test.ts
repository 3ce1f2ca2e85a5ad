import { equal, ok, rejects } from "node:assert/strict";
import { startLocalCluster } from "../lib/mesos/local/mod.ts";
import { NotSubscribedError, SchedulerClient } from "../lib/mesos/scheduler_client.ts";
import type { SchedulerEvent } from "../lib/mesos/types.ts";
import { tempDir, waitFor } from "./_util.ts";

for (const contentType of ["application/x-protobuf", "application/json"] as const) {
  Deno.test({
    name: `the scheduler client subscribes, gets offers, declines and fails over (${contentType})`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const workDir = await tempDir("sched-client");
      const { url, cluster } = await startLocalCluster({ agents: 1, workDir });
      const events: SchedulerEvent[] = [];
      const states: string[] = [];
      const options = {
        master: url,
        frameworkInfo: { user: "nobody", name: "client-test", failover_timeout: 60 },
        contentType,
        onEvent: (e: SchedulerEvent) => void events.push(e),
        onStateChange: (s: string) => void states.push(s),
      };
      const client = new SchedulerClient(options);
      try {
        await rejects(() => client.revive(), NotSubscribedError);
        client.start();
        await waitFor("SUBSCRIBED", () => client.state === "subscribed");
        equal(events[0]?.type, "SUBSCRIBED");
        ok(client.frameworkId);
        const offers = await waitFor("an offer", () => events.find((e) => e.type === "OFFERS"));
        const offerId = offers.offers!.offers![0]!.id.value;
        await client.decline([offerId], { refuse_seconds: 1 });
        await client.reconcile([]);
        const id = client.frameworkId;
        await client.stop();
        equal(client.state, "disconnected");

        const again = new SchedulerClient({ ...options, frameworkId: id });
        again.start();
        await waitFor("re-SUBSCRIBED", () => again.state === "subscribed");
        equal(again.frameworkId, id);
        await again.stop();
        ok(states.includes("connecting"));
      } finally {
        await client.stop();
        await cluster.stop();
        await Deno.remove(workDir, { recursive: true }).catch(() => {});
      }
    },
  });
}
