/**
 * End to end on the local cluster: the proxy endpoints every instance gets as
 * Mesos tasks. A 1+2 instance has 2 proxies on different agents; a client
 * connected to a proxy task's address keeps writing (each write acknowledged
 * by `WAIT 1`) across a SIGKILL of the master redis-server with at most one
 * reconnect and no acknowledged write lost; DELETE removes the proxies; a
 * proxy whose executor is SIGKILLed is relaunched and STATUS shows it; a
 * lost agent's proxy moves to another agent; UPDATE changes the count; bad
 * `Proxies` values are refused with one line.
 */
import { Redis } from "ioredis";
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { killMasterRedis, logTail, startFailoverEnv } from "./_failover.ts";
import { create, password, status, type View, waitRunning } from "./_sched.ts";
import { waitFor } from "./_util.ts";
import { listenerPid, listening } from "./_listeners.ts";

/** STATUS with the proxy fields. */
interface ProxyStatus extends View {
  Proxies: { IP: string; Port: string; Id: string }[];
  ProxiesWanted: number;
}

async function proxyStatus(
  env: { sched: Parameters<typeof status>[0] },
  name: string,
): Promise<ProxyStatus | undefined> {
  return await status(env.sched, name) as ProxyStatus | undefined;
}

function client(host: string, port: number, secret: string | undefined): Redis {
  const r = new Redis({
    host,
    port,
    ...(secret ? { password: secret } : {}),
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
  name: "proxy tasks: follow a master SIGKILL, go with DELETE, come back after a kill",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const env = await startFailoverEnv("e2e-proxy-task", 3, {}, {
      // A connection arriving during the failover waits for the new master
      // (on a loaded machine a failover may take more than the default 2 s).
      ProxyWaitSeconds: 30,
    });
    try {
      await t.step("bad Proxies values are refused with one line", async () => {
        for (
          const [body, want] of [
            [{ Proxies: -1 }, /^Field "Proxies" must be a whole JSON number from 0 to 16/],
            [{ Proxies: "2" }, /but got "2"\n$/],
            [{ Proxies: 17 }, /but got 17\n$/],
            [{ proxies: 1 }, /Body field "proxies" is unknown \(did you mean "Proxies"\?\)/],
          ] as const
        ) {
          const res = await create(env.sched, "bad", 20, 1, body);
          assertEquals(res.status, 400, res.text);
          assertMatch(res.text, want);
          assertEquals(res.text.trim().split("\n").length, 1, res.text);
        }
        assertEquals(await status(env.sched, "bad"), undefined);
      });

      let proxyPorts: number[] = [];
      await t.step("a 1+2 instance has 2 running proxies on different agents", async () => {
        assertEquals((await create(env.sched, "pt", 20, 2)).status, 201);
        await waitRunning(env.sched, "pt", 90_000);
        const view = await waitFor("2 proxies in STATUS", async () => {
          const v = await proxyStatus(env, "pt");
          return v && v.Proxies.length === 2 ? v : undefined;
        }, { timeoutMs: 60_000, intervalMs: 250 }).catch((e) => {
          throw new Error(`${(e as Error).message}${logTail(env.sched)}`);
        });
        assertEquals(view.ProxiesWanted, 2);
        assertEquals(view.Proxies.map((p) => p.Id), ["x1", "x2"]);
        proxyPorts = view.Proxies.map((p) => Number(p.Port));
        const agents = new Set(proxyPorts.map((p) => env.agentOfPort(p)));
        assertEquals(agents.size, 2, `proxies on different agents: ${JSON.stringify(view)}`);
      });

      await t.step(
        "a writer through a proxy task keeps going across a master SIGKILL",
        async () => {
          const before = (await status(env.sched, "pt"))!;
          const secret = await password(env.sched, "pt");
          const port = proxyPorts[0]!;
          const acked: string[] = [];
          let reconnects = 0;
          let refusals = 0;
          let stop = false;
          const writer = (async () => {
            let r = client("127.0.0.1", port, secret);
            await r.connect();
            for (let i = 0; !stop; i++) {
              const key = `w${i}`;
              try {
                await r.set(key, String(i));
                if ((await r.wait(1, 2000)) >= 1) acked.push(key);
              } catch (error) {
                if ((error as Error).name === "ReplyError") {
                  // Redis itself refused (NOREPLICAS while a master waits for a
                  // replica to count): the connection is fine, try again.
                  refusals++;
                  await new Promise((res) => setTimeout(res, 20));
                  continue;
                }
                reconnects++;
                r.disconnect();
                r = client("127.0.0.1", port, secret);
                await waitFor("a connection through the proxy task", async () => {
                  await r.connect().catch((e) => {
                    r.disconnect();
                    r = client("127.0.0.1", port, secret);
                    throw e;
                  });
                  return true;
                }, { timeoutMs: 60_000, intervalMs: 100 });
              }
            }
            r.disconnect();
          })();
          try {
            await waitFor("some acked writes", () => acked.length >= 50, { timeoutMs: 30_000 });
            await killMasterRedis(before, "SIGKILL");
            const after = await waitFor("a new master in STATUS", async () => {
              const v = await status(env.sched, "pt");
              return v?.Master && v.Master.Port !== before.Master!.Port ? v : undefined;
            }, { timeoutMs: 60_000, intervalMs: 100 });
            const ackedAtKill = acked.length;
            await waitFor(
              "writes acked after the failover",
              () => acked.length >= ackedAtKill + 50,
              {
                timeoutMs: 60_000,
              },
            );
            stop = true;
            await writer;
            console.log(
              `through proxy task :${port}: ${reconnects} reconnect(s), ${refusals} refusal(s) by redis, ${acked.length} acked writes`,
            );
            assert(reconnects <= 1, `at most one reconnect, got ${reconnects}`);
            const direct = client(after.Master!.IP, Number(after.Master!.Port), secret);
            await direct.connect();
            const values = await direct.mget(...acked);
            direct.disconnect();
            assertEquals(
              acked.filter((_, i) => values[i] === null),
              [],
              "acked writes lost",
            );
          } catch (error) {
            throw new Error(`${(error as Error).message}${logTail(env.sched)}`);
          } finally {
            stop = true;
            await writer.catch(() => {});
          }
        },
      );

      await t.step("DELETE removes the proxies", async () => {
        const res = await env.sched.api("/v1/DELETE/pt", { method: "DELETE" });
        assertEquals(res.status, 200, await res.text());
        await waitFor("pt gone", async () => (await status(env.sched, "pt")) === undefined, {
          timeoutMs: 60_000,
          intervalMs: 250,
        });
        for (const port of proxyPorts) {
          assertEquals(await listening(port), false, `proxy port ${port} still listens`);
        }
      });

      await t.step("a proxy whose executor is SIGKILLed is relaunched", async () => {
        assertEquals((await create(env.sched, "ps", 20, 0, { Proxies: 2 })).status, 201);
        const running = await waitFor("ps RUNNING with 2 proxies", async () => {
          const v = await proxyStatus(env, "ps");
          return v?.Status === "RUNNING" && v.Proxies.length === 2 ? v : undefined;
        }, { timeoutMs: 90_000, intervalMs: 250 });
        // A proxy on an agent where ps has no redis-server: its executor hosts the proxy alone.
        const redisAgent = env.agentOfPort(running.Master!.Port);
        const victim = running.Proxies.find((p) => env.agentOfPort(p.Port) !== redisAgent)!;
        const pid = listenerPid(Number(victim.Port));
        assert(pid !== undefined, `the process listening on ${victim.Port}`);
        const cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ");
        assertMatch(cmdline, /executor/i, `${pid} is an executor: ${cmdline}`);
        Deno.kill(pid, "SIGKILL");
        const back = await waitFor(`proxy ${victim.Id} relaunched`, async () => {
          if (!/Launching proxy ps\.x\d\.2 /.test(env.sched.log())) return undefined;
          const v = await proxyStatus(env, "ps");
          return v?.Proxies.length === 2 && v.Proxies.some((p) => p.Id === victim.Id)
            ? v
            : undefined;
        }, { timeoutMs: 90_000, intervalMs: 250 }).catch((e) => {
          throw new Error(`${(e as Error).message}${logTail(env.sched)}`);
        });
        assertMatch(
          env.sched.log(),
          new RegExp(`Proxy task ps\\.${victim.Id}\\.1 of ps lost: TASK_FAILED`),
        );
        // The relaunched proxy serves the instance.
        const moved = back.Proxies.find((p) => p.Id === victim.Id)!;
        const r = client(moved.IP, Number(moved.Port), await password(env.sched, "ps"));
        await r.connect();
        assertEquals(await r.set("after", "relaunch"), "OK");
        assertEquals(await r.get("after"), "relaunch");
        r.disconnect();
      });

      await t.step("a lost agent's proxy moves to another agent; STATUS shows it", async () => {
        const before = (await proxyStatus(env, "ps"))!;
        const redisAgent = env.agentOfPort(before.Master!.Port);
        const victim = before.Proxies.find((p) => env.agentOfPort(p.Port) !== redisAgent)!;
        const lostAgent = env.agentOfPort(victim.Port);
        await env.cluster.stopAgent(lostAgent);
        const moved = await waitFor(`proxy ${victim.Id} on another agent`, async () => {
          const v = await proxyStatus(env, "ps");
          const p = v?.Proxies.find((x) => x.Id === victim.Id);
          return p && env.agentOfPort(p.Port) !== lostAgent ? p : undefined;
        }, { timeoutMs: 60_000, intervalMs: 250 }).catch((e) => {
          throw new Error(`${(e as Error).message}${logTail(env.sched)}`);
        });
        const r = client(moved.IP, Number(moved.Port), await password(env.sched, "ps"));
        await r.connect();
        assertEquals(await r.get("after"), "relaunch");
        r.disconnect();
      });

      await t.step("UPDATE sets the proxy count: the surplus proxy goes", async () => {
        const before = (await proxyStatus(env, "ps"))!;
        const res = await env.sched.api("/v1/UPDATE/ps", {
          method: "PUT",
          body: JSON.stringify({ Proxies: 1 }),
          headers: { "content-type": "application/json" },
        });
        assertEquals(res.status, 202, await res.text());
        const after = await waitFor("1 proxy left", async () => {
          const v = await proxyStatus(env, "ps");
          return v?.ProxiesWanted === 1 && v.Proxies.length === 1 ? v : undefined;
        }, { timeoutMs: 60_000, intervalMs: 250 });
        assertEquals(after.Proxies[0]!.Id, "x1");
        const gone = before.Proxies.find((p) => p.Id === "x2")!;
        await waitFor(
          `proxy port ${gone.Port} closed`,
          async () => !(await listening(Number(gone.Port))),
          {
            timeoutMs: 30_000,
            intervalMs: 250,
          },
        );
      });
    } finally {
      await env.close();
    }
  },
});
