/**
 * End to end: `mrr proxy -n NAME` in front of a 1+2 instance on the local
 * cluster. A client keeps writing through it (each write acknowledged by
 * `WAIT 1`) across a SIGKILL of the master redis-server: it reconnects at
 * most once, and every acknowledged write is on the new master. MULTI/EXEC,
 * BLPOP and pub/sub work through it; an unknown instance exits 1 with one
 * line; a deleted instance ends the proxy.
 */
import { Redis } from "ioredis";
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { createRunning, killMasterRedis, logTail, startFailoverEnv } from "./_failover.ts";
import { password, status } from "./_sched.ts";
import { freePort, waitFor } from "./_util.ts";
import { runMrr, show } from "./_mrr.ts";

const MRR = new URL("../cmd/mrr.ts", import.meta.url).pathname;

/** `mrr proxy` as a process; its output collected. */
function spawnProxy(endpoint: string, config: string, name: string, port: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      MRR,
      "proxy",
      "-n",
      name,
      "-l",
      `127.0.0.1:${port}`,
      "--wait",
      // Long enough for a failover on a loaded machine: a connection waits for
      // the new master instead of failing, so the writer reconnects once.
      "30s",
    ],
    env: { MRR_ENDPOINT: endpoint, MRR_CONFIG: config, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  const decoder = new TextDecoder();
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) out += decoder.decode(chunk);
  };
  const done = Promise.all([collect(child.stdout), collect(child.stderr)]);
  return {
    output: () => out,
    status: child.status,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // exited
      }
      await child.status;
      await done;
    },
  };
}

/** The instance password clients give the proxy (it answers AUTH itself). */
let instancePassword: string | undefined;

function proxyClient(port: number): Redis {
  const r = new Redis({
    host: "127.0.0.1",
    port,
    ...(instancePassword ? { password: instancePassword } : {}),
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    commandTimeout: 10_000,
  });
  r.on("error", () => {});
  return r;
}

Deno.test({
  name: "mrr proxy keeps a writing client across a master SIGKILL and keeps every acked write",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const env = await startFailoverEnv("e2e-proxy");
    const config = `${env.dir}/mrr.json`;
    const port = freePort();
    let proxy: ReturnType<typeof spawnProxy> | undefined;
    try {
      const unknown = await runMrr(config, ["proxy", "-n", "nosuch"], {
        MRR_ENDPOINT: env.sched.url,
      });
      assertEquals(unknown.code, 1, show(unknown));
      assertEquals(unknown.stderr.trim().split("\n").length, 1, show(unknown));
      assertMatch(unknown.stderr, /instance "nosuch" does not exist/);

      const before = await createRunning(env.sched, "px", 2);
      instancePassword = await password(env.sched, "px");
      proxy = spawnProxy(env.sched.url, config, "px", port);
      const p = proxy;
      await waitFor("mrr proxy to listen", () => p.output().includes("listening on"), {
        timeoutMs: 60_000,
      });

      // Stateful commands through the proxy.
      const a = proxyClient(port);
      const b = proxyClient(port);
      await a.connect();
      await b.connect();
      assertEquals(await a.multi().set("m", "1").incr("m").exec(), [[null, "OK"], [null, 2]]);
      const popped = b.blpop("q", 10);
      await new Promise((r) => setTimeout(r, 100));
      await a.rpush("q", "x");
      assertEquals(await popped, ["q", "x"]);
      const got: string[] = [];
      b.on("message", (_c: string, m: string) => got.push(m));
      await b.subscribe("ch");
      assertEquals(await a.publish("ch", "hi"), 1);
      await waitFor("the message", () => got.length === 1);
      a.disconnect();
      b.disconnect();

      // A writer across a SIGKILL of the master.
      const acked: string[] = [];
      let reconnects = 0;
      let refusals = 0;
      let killedAt = 0;
      let firstWriteAfterKill = 0;
      let stop = false;
      const writer = (async () => {
        let r = proxyClient(port);
        await r.connect();
        for (let i = 0; !stop; i++) {
          const key = `w${i}`;
          try {
            await r.set(key, String(i));
            if (reconnects > 0 && !firstWriteAfterKill) firstWriteAfterKill = Date.now();
            const replicas = await r.wait(1, 2000);
            if (replicas >= 1) acked.push(key);
          } catch (error) {
            if ((error as Error).name === "ReplyError") {
              // Redis itself refused (NOREPLICAS while the new master waits
              // for a replica): the connection is fine, try again.
              refusals++;
              await new Promise((r) => setTimeout(r, 20));
              continue;
            }
            reconnects++;
            r.disconnect();
            r = proxyClient(port);
            await waitFor("a connection through the proxy", async () => {
              await r.connect().catch((e) => {
                r.disconnect();
                r = proxyClient(port);
                throw e;
              });
              return true;
            }, { timeoutMs: 60_000, intervalMs: 100 });
          }
        }
        r.disconnect();
      })();
      await waitFor("some acked writes", () => acked.length >= 50, { timeoutMs: 30_000 });
      killedAt = Date.now();
      await killMasterRedis(before, "SIGKILL");
      const after = await waitFor("a new master in STATUS", async () => {
        const v = await status(env.sched, "px");
        return v?.Master && v.Master.Port !== before.Master!.Port ? v : undefined;
      }, { timeoutMs: 60_000, intervalMs: 100 }).catch((e) => {
        throw new Error(`${(e as Error).message}${logTail(env.sched)}`);
      });
      const ackedAtKill = acked.length;
      await waitFor("writes acked after the failover", () => acked.length >= ackedAtKill + 50, {
        timeoutMs: 60_000,
      });
      stop = true;
      await writer;
      console.log(
        `through mrr proxy: first write ${
          firstWriteAfterKill - killedAt
        } ms after the SIGKILL, ${reconnects} reconnect(s), ${refusals} refusal(s) by redis, ${acked.length} acked writes`,
      );
      assert(reconnects <= 1, `at most one reconnect, got ${reconnects}`);

      // Every acked write is on the new master (read directly).
      const direct = new Redis({
        host: after.Master!.IP,
        port: Number(after.Master!.Port),
        lazyConnect: true,
        retryStrategy: () => null,
        ...(instancePassword ? { password: instancePassword } : {}),
      });
      await direct.connect();
      const values = await direct.mget(...acked);
      direct.disconnect();
      const lost = acked.filter((_, i) => values[i] === null);
      assertEquals(lost, [], "WAIT-acknowledged writes lost");

      // Deleting the instance ends the proxy with one line.
      const del = await fetch(`${env.sched.url}/v1/DELETE/px`, { method: "DELETE" });
      assertEquals(del.status, 200, await del.text());
      const exit = await proxy.status;
      assertEquals(exit.code, 1, proxy.output());
      assertMatch(proxy.output(), /instance "px" was deleted/);
    } finally {
      await proxy?.stop();
      await env.close();
    }
  },
});
