/**
 * End to end: a Redis Cluster instance with no replicas (2 masters × 0)
 * survives a SIGKILL of the scheduler (same nodes, no relaunch, RUNNING
 * again), and a shard master SIGKILLed with no replica to take over restarts
 * in place with its data: same port, same node id, its keys back.
 */
import { Cluster } from "ioredis";
import { assert, assertEquals } from "./_assert.ts";
import { waitFor } from "./_util.ts";
import { logTail, pidOfPort, startFailoverEnv } from "./_failover.ts";
import { deleteAndWait, password, redisPids, type Sched, status } from "./_sched.ts";

interface Proc {
  IP: string;
  Port: string;
  NodeId?: string;
}
interface RcView {
  Status: string;
  Reason: string | null;
  Shards: { Slots: string; Master: Proc | null; Slaves: Proc[] }[];
}

async function waitRc(
  sched: Sched,
  what: string,
  ok: (v: RcView) => boolean,
  before?: () => Promise<void>,
): Promise<RcView> {
  let last: RcView | undefined;
  try {
    return await waitFor(what, async () => {
      await before?.();
      last = await status(sched, "rc0") as unknown as RcView | undefined;
      return last && ok(last) ? last : undefined;
    }, { timeoutMs: 120_000, intervalMs: 50 });
  } catch (error) {
    throw new Error(
      `${(error as Error).message}; last STATUS ${JSON.stringify(last)}${logTail(sched)}`,
    );
  }
}

Deno.test({
  name:
    "a Redis Cluster instance keeps its nodes across a scheduler SIGKILL, and a shard with no replica restarts in place with its data",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const env = await startFailoverEnv("e2e-cluster-restart");
    let client: Cluster | undefined;
    try {
      let view!: RcView;
      let secret!: string;
      const values = new Map<string, string>();
      await t.step("2 masters × 0 replicas RUNNING, 500 keys written", async () => {
        const res = await env.sched.api("/v1/CREATE/rc0/20/2/0", { method: "POST" });
        assertEquals(res.status, 201, await res.text());
        view = await waitRc(env.sched, "RUNNING", (v) => v.Status === "RUNNING");
        secret = (await password(env.sched, "rc0"))!;
        assertEquals(view.Shards.map((s) => s.Slots), ["0-8191", "8192-16383"]);
        client = new Cluster(
          view.Shards.map((s) => ({ host: s.Master!.IP, port: Number(s.Master!.Port) })),
          { redisOptions: { password: secret }, retryDelayOnClusterDown: 100 },
        );
        for (let i = 0; i < 500; i++) values.set(`k${i}`, `v${i}`);
        await Promise.all([...values].map(([k, v]) => client!.set(k, v)));
        client.disconnect();
        client = undefined;
        // The AOF is fsynced every second: what is written now is on disk after that.
        await new Promise((r) => setTimeout(r, 2_000));
      });
      await t.step("the scheduler is SIGKILLed and comes back to the same nodes", async () => {
        const sched = await env.restartSched("kill");
        const again = await waitRc(
          sched,
          "RUNNING after the restart",
          (v) => v.Status === "RUNNING" && v.Shards.every((s) => s.Master?.NodeId),
        );
        assertEquals(
          again.Shards.map((s) => `${s.Master?.Port} ${s.Master?.NodeId}`),
          view.Shards.map((s) => `${s.Master?.Port} ${s.Master?.NodeId}`),
        );
      });
      await t.step(
        "SIGKILL of a master with no replica: restarted in place, keys back",
        async () => {
          const victim = view.Shards[1]!.Master!;
          const oldPid = await pidOfPort(victim.Port);
          Deno.kill(oldPid, "SIGKILL");
          let sawReason = "";
          let restarted = false;
          const back = await waitRc(env.sched, "RUNNING again after the restart in place", (v) => {
            if (/unavailable/.test(v.Reason ?? "")) sawReason = v.Reason!;
            return v.Status === "RUNNING" && v.Shards[1]!.Master?.Port === victim.Port &&
              restarted;
          }, async () => {
            // A new redis-server on the port: the restart happened (STATUS may still say RUNNING
            // for a moment after the kill).
            const pids = await redisPids(victim.Port);
            restarted = pids.length === 1 && pids[0] !== oldPid;
          });
          console.log(`STATUS while the shard was down: ${sawReason || "(not sampled)"}`);
          assertEquals(back.Shards[1]!.Master?.NodeId, victim.NodeId, "the same node came back");
          client = new Cluster([{ host: victim.IP, port: Number(victim.Port) }], {
            redisOptions: { password: secret },
            retryDelayOnClusterDown: 100,
          });
          const keys = [...values.keys()];
          const got = await Promise.all(keys.map((k) => client!.get(k)));
          const lost = keys.filter((k, i) => got[i] !== values.get(k));
          assertEquals(lost.length, 0, `keys lost: ${lost.slice(0, 5)}`);
          client.disconnect();
          client = undefined;
        },
      );
      await t.step("DELETE leaves no redis-server", async () => {
        const ports = view.Shards.map((s) => s.Master!.Port);
        await deleteAndWait(env.sched, "rc0");
        for (const port of ports) {
          await waitFor(
            `no redis-server on ${port}`,
            async () => (await redisPids(port)).length === 0,
            { timeoutMs: 30_000 },
          );
        }
        assert((await (await env.sched.api("/v1/STATUS")).json()).length === 0, "no instance left");
      });
    } finally {
      client?.disconnect();
      await env.close();
    }
  },
});
