/**
 * Several local masters: non-leading masters answering 307/503, the
 * scheduler client finding the leader through redirects, master lists and
 * ZooKeeper, following a leader change with its FrameworkID, and starting
 * over after "Framework has been removed".
 */

import { SchedulerClient } from "../lib/mesos/scheduler_client.ts";
import { ZooKeeperDetector } from "../lib/mesos/detector.ts";
import type { SchedulerEvent } from "../lib/mesos/types.ts";
import { assert, assertEquals } from "./_assert.ts";
import { startTestCluster } from "./_mesos_local.ts";
import { startZooKeeper } from "./_services.ts";
import { freePort, waitFor } from "./_util.ts";

type TestCluster = Awaited<ReturnType<typeof startTestCluster>>;

const SUBSCRIBE = JSON.stringify({
  type: "SUBSCRIBE",
  subscribe: { framework_info: { user: "u", name: "n" } },
});

function hostPort(env: TestCluster): string {
  return `127.0.0.1:${env.cluster.port}`;
}

async function rawSubscribe(url: string, path = "/api/v1/scheduler"): Promise<Response> {
  const response = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: SUBSCRIBE,
    redirect: "manual",
  });
  await response.body?.cancel();
  return response;
}

/** A client whose events are recorded; backoff kept short for the tests. */
function newClient(master: string, extra: { frameworkId?: string; failoverTimeout?: number } = {}) {
  const events: SchedulerEvent[] = [];
  const client = new SchedulerClient({
    master,
    frameworkInfo: {
      user: "nobody",
      name: "ha-test",
      failover_timeout: extra.failoverTimeout ?? 60,
    },
    ...(extra.frameworkId ? { frameworkId: extra.frameworkId } : {}),
    contentType: "application/json",
    backoff: { minMs: 50, maxMs: 300 },
    onEvent: (e) => void events.push(e),
  });
  const lastSubscribed = () => events.findLast((e) => e.type === "SUBSCRIBED")?.subscribed;
  const used = new Set<string>();
  /** The id of an offer not handed out before. */
  const nextOfferId = async () => {
    const id = await waitFor(
      "an offer",
      () =>
        events.flatMap((e) => e.offers?.offers ?? []).map((o) => o.id.value).find((v) =>
          !used.has(v)
        ),
      { timeoutMs: 10_000 },
    );
    used.add(id);
    return id;
  };
  return { client, events, lastSubscribed, nextOfferId };
}

Deno.test({
  name: "a non-leading master redirects with 307 or answers 503, and a client lands at the leader",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const leader = await startTestCluster({ agents: 1 });
    const standby = await startTestCluster({ agents: 0, leader: hostPort(leader) });
    const orphan = await startTestCluster({ agents: 0, leader: null });
    try {
      await t.step("307 to //leader with path and query kept; 503 without a leader", async () => {
        const redirected = await rawSubscribe(standby.cluster.url, "/master/api/v1/scheduler?x=1");
        assertEquals(redirected.status, 307);
        assertEquals(
          redirected.headers.get("location"),
          `//${hostPort(leader)}/master/api/v1/scheduler?x=1`,
        );
        assertEquals((await rawSubscribe(orphan.cluster.url)).status, 503);
        assertEquals(standby.cluster.leading, false);
        assertEquals(leader.cluster.leading, true);
        const base = await fetch(`${standby.cluster.url}/redirect`, { redirect: "manual" });
        await base.body?.cancel();
        assertEquals(base.status, 307);
        assertEquals(base.headers.get("location"), `//${hostPort(leader)}`);
      });

      await t.step("a client given the standby subscribes at the leader and calls it", async () => {
        const { client, lastSubscribed, nextOfferId } = newClient(hostPort(standby));
        try {
          client.start();
          await waitFor("SUBSCRIBED", () => client.state === "subscribed", { timeoutMs: 10_000 });
          assertEquals(client.masterUrl, leader.cluster.url);
          assertEquals(lastSubscribed()?.master_info?.id, leader.cluster.masterId);
          await client.decline([await nextOfferId()], { refuse_seconds: 1 });
          assert(leader.cluster.isConnected(client.frameworkId!));
        } finally {
          await client.stop();
        }
      });

      await t.step(
        "a client given dead, leaderless and leading masters finds the leader",
        async () => {
          const master = `127.0.0.1:${freePort()},${hostPort(orphan)},${hostPort(leader)}`;
          const { client, nextOfferId } = newClient(master);
          try {
            client.start();
            await waitFor("SUBSCRIBED", () => client.state === "subscribed", { timeoutMs: 10_000 });
            assertEquals(client.masterUrl, leader.cluster.url);
            await client.decline([await nextOfferId()]);
          } finally {
            await client.stop();
          }
        },
      );

      await t.step("setLeader moves leadership; the client follows with its id", async () => {
        const { client, lastSubscribed, nextOfferId } = newClient(
          `${hostPort(leader)},${hostPort(standby)}`,
        );
        try {
          client.start();
          await waitFor("SUBSCRIBED", () => client.state === "subscribed", { timeoutMs: 10_000 });
          assertEquals(client.masterUrl, leader.cluster.url);
          const id = client.frameworkId!;
          standby.cluster.setLeader(undefined);
          leader.cluster.setLeader(hostPort(standby)); // closes its scheduler streams
          await waitFor(
            "SUBSCRIBED at the new leader",
            () => client.state === "subscribed" && client.masterUrl === standby.cluster.url,
            {
              timeoutMs: 10_000,
            },
          );
          assertEquals(client.frameworkId, id);
          assertEquals(lastSubscribed()?.master_info?.id, standby.cluster.masterId);
          assertEquals((await rawSubscribe(leader.cluster.url)).status, 307);
          // The standby has no agents: its leader status is checked with a call, not offers.
          await client.reconcile([]);
          standby.cluster.setLeader(hostPort(leader));
          leader.cluster.setLeader(undefined);
          await waitFor(
            "SUBSCRIBED back at the first leader",
            () => client.state === "subscribed" && client.masterUrl === leader.cluster.url,
            {
              timeoutMs: 10_000,
            },
          );
          assertEquals(client.frameworkId, id);
          await client.decline([await nextOfferId()]);
        } finally {
          await client.stop();
        }
      });
    } finally {
      await orphan.close();
      await standby.close();
      await leader.close();
    }
  },
});

Deno.test({
  name: "masters registered in ZooKeeper: the client follows the smallest node and keeps its id",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const zk = await startZooKeeper();
    const zkUrl = `zk://${zk.endpoint}/mesos`;
    const clusters: TestCluster[] = [];
    const detector = new ZooKeeperDetector({ servers: zk.endpoint, path: "/mesos" });
    let client: SchedulerClient | undefined;
    try {
      const first = await startTestCluster({ agents: 1, zk: zkUrl });
      clusters.push(first);
      const second = await startTestCluster({ agents: 1, zk: zkUrl });
      clusters.push(second);
      assertEquals(first.cluster.leading, true);
      await waitFor("the second master to follow", () => !second.cluster.leading);
      assertEquals((await rawSubscribe(second.cluster.url)).status, 307);

      detector.start();
      const node = await waitFor("a leader node", () => detector.leader, { timeoutMs: 10_000 });
      assertEquals(node.info.id, first.cluster.masterId);
      assertEquals(node.info.pid, `master@127.0.0.1:${first.cluster.port}`);
      assertEquals(node.info.address, {
        hostname: "127.0.0.1",
        ip: "127.0.0.1",
        port: first.cluster.port,
      });
      assert(node.info.version, "MasterInfo has no version");

      const recorded = newClient(zkUrl);
      client = recorded.client;
      client.start();
      await waitFor("SUBSCRIBED", () => client!.state === "subscribed", { timeoutMs: 15_000 });
      assertEquals(client.masterUrl, first.cluster.url);
      assertEquals(recorded.lastSubscribed()?.master_info?.id, first.cluster.masterId);
      const id = client.frameworkId!;
      await client.decline([await recorded.nextOfferId()]);

      await first.close(); // its node vanishes
      await waitFor("the second master to lead", () => second.cluster.leading, {
        timeoutMs: 15_000,
      });
      await waitFor(
        "SUBSCRIBED at the second master",
        () => client!.state === "subscribed" && client!.masterUrl === second.cluster.url,
        {
          timeoutMs: 20_000,
        },
      );
      assertEquals(recorded.lastSubscribed()?.master_info?.id, second.cluster.masterId);
      assertEquals(client.frameworkId, id, "the framework id changed across the master change");
      assert(second.cluster.isConnected(id));
      await client.decline([await recorded.nextOfferId()]);
      await waitFor(
        "the detector to see the new leader",
        () => detector.leader?.info.id === second.cluster.masterId,
      );
    } finally {
      await client?.stop();
      detector.close();
      for (const env of clusters.reverse()) await env.close();
      await zk.stop();
    }
  },
});

Deno.test({
  name: "a removed framework gets ERROR, drops its id and subscribes as a new framework",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const env = await startTestCluster({ agents: 1 });
    const { client, events } = newClient(env.cluster.url, { failoverTimeout: 0 });
    try {
      client.start();
      await waitFor("SUBSCRIBED", () => client.state === "subscribed", { timeoutMs: 10_000 });
      const oldId = client.frameworkId!;
      env.cluster.closeSchedulerStream(oldId); // failover_timeout 0: removed at once
      const error = await waitFor("ERROR", () => events.find((e) => e.type === "ERROR"), {
        timeoutMs: 10_000,
      });
      assertEquals(error.error?.message, "Framework has been removed");
      assert(env.cluster.isRemoved(oldId));
      await waitFor(
        "a fresh SUBSCRIBED",
        () => client.state === "subscribed" && client.frameworkId !== oldId,
        { timeoutMs: 10_000 },
      );
      const subscribed = events.filter((e) => e.type === "SUBSCRIBED");
      assertEquals(subscribed.length, 2);
      assertEquals(subscribed[1]!.subscribed!.framework_id.value, client.frameworkId);
      assert(env.cluster.isConnected(client.frameworkId!));
      await client.reconcile([]);
    } finally {
      await client.stop();
      await env.close();
    }
  },
});
