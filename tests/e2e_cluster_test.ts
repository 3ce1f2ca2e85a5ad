/**
 * End to end: a Redis Cluster instance (3 masters × 1 replica) on the local
 * cluster. `redis-cli --cluster check` finds every slot covered; an
 * `ioredis` Cluster client writes and reads 10,000 keys; SIGKILL of a shard
 * master while the client writes with `WAIT 1 1000`: the shard's replica
 * takes over, no acknowledged write is lost, a new replica joins, the dead
 * node is forgotten everywhere; DELETE leaves no process.
 */
import { Cluster } from "ioredis";
import { assert, assertEquals } from "./_assert.ts";
import { waitFor } from "./_util.ts";
import { logTail, pidOfPort, startFailoverEnv } from "./_failover.ts";
import { deleteAndWait, password, redisPids, type Sched, status } from "./_sched.ts";
import { openStore } from "../lib/store/mod.ts";

interface Proc {
  IP: string;
  Port: string;
  Id: string;
  NodeId?: string;
  InSync: boolean;
}
interface Shard {
  Slots: string;
  Master: Proc | null;
  Slaves: Proc[];
}
interface RcView {
  Type: string;
  Status: string;
  Reason: string | null;
  Shards: Shard[];
  Master: Proc | null;
  Slaves: Proc[];
  Epoch: number;
}

async function rcStatus(sched: Sched, name: string): Promise<RcView | undefined> {
  return await status(sched, name) as unknown as RcView | undefined;
}

async function waitRc(
  sched: Sched,
  name: string,
  what: string,
  ok: (v: RcView) => boolean,
  timeoutMs = 120_000,
): Promise<RcView> {
  let last: RcView | undefined;
  try {
    return await waitFor(what, async () => {
      last = await rcStatus(sched, name);
      return last && ok(last) ? last : undefined;
    }, { timeoutMs, intervalMs: 100 });
  } catch (error) {
    throw new Error(
      `${(error as Error).message}; last STATUS ${JSON.stringify(last)}${logTail(sched)}`,
    );
  }
}

/** `redis-cli --cluster check` against one node; returns its output. */
async function clusterCheck(p: Proc, secret: string): Promise<string> {
  const out = await new Deno.Command("redis-cli", {
    args: ["--cluster", "check", `${p.IP}:${p.Port}`],
    env: { REDISCLI_AUTH: secret },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
}

/** `CLUSTER NODES` of one node, by redis-cli. */
async function clusterNodes(p: Proc, secret: string): Promise<string> {
  const out = await new Deno.Command("redis-cli", {
    args: ["-h", p.IP, "-p", p.Port, "CLUSTER", "NODES"],
    env: { REDISCLI_AUTH: secret },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout);
}

function allProcs(v: RcView): Proc[] {
  return v.Shards.flatMap((s) => [...(s.Master ? [s.Master] : []), ...s.Slaves]);
}

function assertCheckClean(text: string): void {
  assert(text.includes("[OK] All 16384 slots covered."), `--cluster check:\n${text}`);
  assert(!text.includes("[ERR]") && !text.includes("[WARNING]"), `--cluster check:\n${text}`);
}

Deno.test({
  name:
    "a Redis Cluster instance forms, serves 10,000 keys, fails a shard over without losing acked writes, and is deleted",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const env = await startFailoverEnv("e2e-cluster");
    let client: Cluster | undefined;
    try {
      const sched = env.sched;
      const name = "rc";
      let view!: RcView;
      let secret!: string;
      await t.step("CREATE 3 masters × 1 replica becomes RUNNING with 3 shards", async () => {
        const res = await sched.api(`/v1/CREATE/${name}/20/3/1`, {
          method: "POST",
          body: JSON.stringify({ Distribution: 2 }),
          headers: { "content-type": "application/json" },
        });
        assertEquals(res.status, 201, await res.text());
        view = await waitRc(sched, name, "RC RUNNING", (v) => v.Status === "RUNNING");
        secret = (await password(sched, name))!;
        assertEquals(view.Type, "RC");
        assertEquals(view.Shards.map((s) => s.Slots), ["0-5460", "5461-10922", "10923-16383"]);
        for (const s of view.Shards) {
          assert(s.Master, "each shard has a master");
          assertEquals(s.Slaves.length, 1);
          // A master and its own replica never share an agent (3 agents leave a choice).
          assert(
            env.agentOfPort(s.Master.Port) !== env.agentOfPort(s.Slaves[0]!.Port),
            `shard ${s.Slots}: master and replica on one agent`,
          );
        }
        assertEquals(view.Master?.Port, view.Shards[0]!.Master?.Port);
      });
      await t.step("redis-cli --cluster check: every slot covered, no error", async () => {
        assertCheckClean(await clusterCheck(view.Shards[0]!.Master!, secret));
      });
      await t.step("an ioredis Cluster client writes and reads 10,000 keys", async () => {
        client = new Cluster(
          view.Shards.map((s) => ({ host: s.Master!.IP, port: Number(s.Master!.Port) })),
          {
            redisOptions: { password: secret },
            retryDelayOnFailover: 50,
            retryDelayOnClusterDown: 50,
            retryDelayOnTryAgain: 50,
            maxRedirections: 32,
          },
        );
        for (let i = 0; i < 10_000; i += 500) {
          await Promise.all(
            Array.from({ length: 500 }, (_, j) => client!.set(`key:${i + j}`, `v${i + j}`)),
          );
        }
        for (let i = 0; i < 10_000; i += 500) {
          const got = await Promise.all(
            Array.from({ length: 500 }, (_, j) => client!.get(`key:${i + j}`)),
          );
          got.forEach((v, j) => assertEquals(v, `v${i + j}`));
        }
        // The keys are spread over every shard.
        for (const s of view.Shards) {
          const n = await new Deno.Command("redis-cli", {
            args: ["-h", s.Master!.IP, "-p", s.Master!.Port, "DBSIZE"],
            env: { REDISCLI_AUTH: secret },
            stdout: "piped",
          }).output();
          const size = Number(new TextDecoder().decode(n.stdout).trim());
          assert(size > 3000, `shard ${s.Slots} holds ${size} keys`);
        }
      });
      await t.step("SIGKILL of a shard master while writing with WAIT 1 1000", async () => {
        const victim = view.Shards[1]!;
        const oldPort = victim.Master!.Port;
        const replicaPort = victim.Slaves[0]!.Port;
        const acked = new Map<string, string>();
        let writing = true;
        let attempts = 0;
        const writer = (async () => {
          for (let i = 0; writing && client; i++) {
            const key = `w:${i}`;
            attempts++;
            try {
              const res = await client!.pipeline().set(key, `x${i}`).call("WAIT", "1", "1000")
                .exec();
              if (res && res[0]![0] === null && res[1]![0] === null && Number(res[1]![1]) >= 1) {
                acked.set(key, `x${i}`);
              }
            } catch {
              // Not acknowledged; a short pause so a failing client cannot starve the event loop.
              await new Promise((r) => setTimeout(r, 10));
            }
          }
        })();
        try {
          await waitFor("some acknowledged writes", () => acked.size >= 200, { timeoutMs: 30_000 });
          const killedAt = Date.now();
          Deno.kill(await pidOfPort(oldPort), "SIGKILL");
          // The replica takes over the shard.
          await waitFor("the replica is the shard's master", async () => {
            const out = await new Deno.Command("redis-cli", {
              args: ["-h", victim.Slaves[0]!.IP, "-p", replicaPort, "ROLE"],
              env: { REDISCLI_AUTH: secret },
              stdout: "piped",
            }).output();
            return new TextDecoder().decode(out.stdout).startsWith("master");
          }, { timeoutMs: 30_000, intervalMs: 20 });
          const masterAgainMs = Date.now() - killedAt;
          const healed = await waitRc(
            sched,
            name,
            "RC RUNNING again with the replica as the shard's master and a new replica",
            (v) =>
              v.Status === "RUNNING" && v.Shards[1]!.Master?.Port === replicaPort &&
              v.Shards[1]!.Slaves.length === 1 && v.Shards[1]!.Slaves[0]!.InSync,
          );
          const healedMs = Date.now() - killedAt;
          const atHeal = acked.size;
          await waitFor(
            "200 writes acknowledged after the heal",
            () => acked.size >= atHeal + 200,
            {
              timeoutMs: 60_000,
            },
          );
          writing = false;
          await writer;
          console.log(
            `shard master again after ${masterAgainMs} ms; RUNNING again after ${healedMs} ms; ${acked.size} of ${attempts} writes acknowledged`,
          );
          // Every acknowledged write is there.
          const keys = [...acked.keys()];
          const lost: string[] = [];
          for (let i = 0; i < keys.length; i += 500) {
            const batch = keys.slice(i, i + 500);
            const got = await Promise.all(batch.map((k) => client!.get(k)));
            batch.forEach((k, j) => {
              if (got[j] !== acked.get(k)) lost.push(k);
            });
          }
          assertEquals(lost.length, 0, `acknowledged writes lost: ${lost.slice(0, 5)}`);
          // Clean check, and no node lists a failed node (or any but the 6).
          assertCheckClean(await clusterCheck(healed.Shards[0]!.Master!, secret));
          const procs = allProcs(healed);
          assertEquals(procs.length, 6);
          await waitFor("no node lists a failed node", async () => {
            for (const p of procs) {
              const nodes = (await clusterNodes(p, secret)).trim().split("\n");
              if (nodes.length !== 6 || nodes.some((l) => /\bfail/.test(l.split(" ")[2] ?? ""))) {
                return false;
              }
            }
            return true;
          }, { timeoutMs: 30_000, intervalMs: 200 });
          assert(healed.Epoch >= 1, "the failover bumped the epoch");
          // The history tells the promotion.
          const events: { Kind: string; Message: string }[] =
            await (await sched.api(`/v1/EVENTS/${name}`)).json();
          assert(
            events.some((e) => e.Kind === "promoted"),
            `a promoted event: ${JSON.stringify(events.map((e) => e.Message))}`,
          );
        } finally {
          // A failed wait must not leave the writer spinning on a closed client.
          writing = false;
          await writer;
        }
      });
      await t.step("DELETE leaves no redis-server and no store key of the instance", async () => {
        const v = (await rcStatus(sched, name))!;
        const ports = allProcs(v).map((p) => p.Port);
        client?.disconnect();
        client = undefined;
        await deleteAndWait(sched, name);
        for (const port of ports) {
          await waitFor(
            `no redis-server on port ${port}`,
            async () => (await redisPids(port)).length === 0,
            { timeoutMs: 30_000 },
          );
        }
        const list = await (await sched.api("/v1/STATUS")).json();
        assertEquals(list, []);
        // No store key of the instance is left (the embedded store has one
        // owner: look once sched is gone; env.close stops what is left).
        await sched.stop();
        const store = await openStore({ type: "embedded", endpoints: `${env.dir}/store/state.db` });
        try {
          const keys = (await store.list(sched.prefix)).map((e) => e.key);
          assertEquals(keys.filter((k) => k.includes(`/instances/${name}`)), [], "store keys left");
        } finally {
          await store.close();
        }
      });
    } finally {
      client?.disconnect();
      await env.close();
    }
  },
});
