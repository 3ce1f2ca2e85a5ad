/**
 * End to end: the agent of a Redis Cluster shard master stops (a lost
 * host). Once the agent is unreachable and the scheduler's own check fails,
 * the shard's replica takes over (every write acknowledged by `WAIT 1` kept),
 * a new replica starts on another agent than its master, and the lost node's
 * id is forgotten by every node.
 */
import { Cluster } from "ioredis";
import { assert, assertEquals } from "./_assert.ts";
import { waitFor } from "./_util.ts";
import { logTail, startFailoverEnv } from "./_failover.ts";
import { deleteAndWait, password, type Sched, status } from "./_sched.ts";

interface Proc {
  IP: string;
  Port: string;
  NodeId?: string;
  InSync: boolean;
}
interface RcView {
  Status: string;
  Shards: { Slots: string; Master: Proc | null; Slaves: Proc[] }[];
}

async function waitRc(sched: Sched, what: string, ok: (v: RcView) => boolean): Promise<RcView> {
  let last: RcView | undefined;
  try {
    return await waitFor(what, async () => {
      last = await status(sched, "rca") as unknown as RcView | undefined;
      return last && ok(last) ? last : undefined;
    }, { timeoutMs: 120_000, intervalMs: 100 });
  } catch (error) {
    throw new Error(
      `${(error as Error).message}; last STATUS ${JSON.stringify(last)}${logTail(sched)}`,
    );
  }
}

async function clusterNodes(p: Proc, secret: string): Promise<string[]> {
  const out = await new Deno.Command("redis-cli", {
    args: ["-h", p.IP, "-p", p.Port, "CLUSTER", "NODES"],
    env: { REDISCLI_AUTH: secret },
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(out.stdout).trim().split("\n");
}

Deno.test({
  name:
    "a lost agent's shard master is replaced by its replica, a new replica joins elsewhere, the dead node is forgotten",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const env = await startFailoverEnv("e2e-cluster-agent", 4);
    let client: Cluster | undefined;
    try {
      const res = await env.sched.api("/v1/CREATE/rca/20/2/1", {
        method: "POST",
        body: JSON.stringify({ Distribution: 2 }),
        headers: { "content-type": "application/json" },
      });
      assertEquals(res.status, 201, await res.text());
      const view = await waitRc(env.sched, "RUNNING", (v) => v.Status === "RUNNING");
      const secret = (await password(env.sched, "rca"))!;
      const victim = view.Shards[0]!;
      const lostAgent = env.agentOfPort(victim.Master!.Port);
      assert(victim.Master!.NodeId, "STATUS gives the node id");
      client = new Cluster(
        view.Shards.map((s) => ({ host: s.Master!.IP, port: Number(s.Master!.Port) })),
        { redisOptions: { password: secret }, retryDelayOnClusterDown: 100 },
      );
      const acked = new Map<string, string>();
      for (let i = 0; i < 300; i++) {
        const r = await client.pipeline().set(`a:${i}`, `v${i}`).call("WAIT", "1", "1000").exec();
        if (r && r[0]![0] === null && Number(r[1]![1]) >= 1) acked.set(`a:${i}`, `v${i}`);
      }
      assertEquals(acked.size, 300, "every write acknowledged before the failure");
      await env.cluster.stopAgent(lostAgent);
      const healed = await waitRc(
        env.sched,
        "RUNNING with the replica as shard 0's master and a new replica elsewhere",
        (v) =>
          v.Status === "RUNNING" && v.Shards[0]!.Master?.Port === victim.Slaves[0]!.Port &&
          v.Shards[0]!.Slaves.length === 1 &&
          env.agentOfPort(v.Shards[0]!.Slaves[0]!.Port) !== lostAgent,
      );
      const shard0 = healed.Shards[0]!;
      assert(
        env.agentOfPort(shard0.Master!.Port) !== env.agentOfPort(shard0.Slaves[0]!.Port),
        "the new replica is not on its master's agent",
      );
      const keys = [...acked.keys()];
      const got = await Promise.all(keys.map((k) => client!.get(k)));
      const lost = keys.filter((k, i) => got[i] !== acked.get(k));
      assertEquals(lost.length, 0, `acknowledged writes lost: ${lost.slice(0, 5)}`);
      const live = healed.Shards.flatMap((s) => [s.Master!, ...s.Slaves]);
      await waitFor("no node lists the lost node", async () => {
        for (const p of live) {
          const lines = await clusterNodes(p, secret);
          if (lines.length !== 4 || lines.some((l) => l.includes(victim.Master!.NodeId!))) {
            return false;
          }
        }
        return true;
      }, { timeoutMs: 30_000, intervalMs: 200 });
      client.disconnect();
      client = undefined;
      await deleteAndWait(env.sched, "rca");
    } finally {
      client?.disconnect();
      await env.close();
    }
  },
});
