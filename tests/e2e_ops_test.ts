/**
 * Day-2 operations on a real `sched` (local cluster, embedded store, an API
 * token): `/metrics` checked by promtool and equal to STATUS read at the
 * same moment, before and after a master's SIGKILL; the EVENTS timeline of
 * that failover; LOGS through the executor; `mrr events`, `mrr logs` and the
 * health line of `mrr init`; and `/v1/HEALTH` going 503 while the Mesos
 * master is unreachable and 200 once subscribed again.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { tempDir, waitFor } from "./_util.ts";
import { type Sched, startSched } from "./_sched.ts";
import { killMasterRedis, logTail, waitHealed } from "./_failover.ts";
import { runMrr, show } from "./_mrr.ts";
import { promtoolCheck } from "./_promtool.ts";
import { takePort } from "./_ports.ts";
import { startLocalCluster } from "../lib/mesos/local/mod.ts";
import { reservePortRange } from "./_ports.ts";
import { withRedis } from "./_sched.ts";

const TOKEN = "ops-e2e-token-0123456789abcdef";
const MB = 1024 * 1024;

// deno-lint-ignore no-explicit-any
type Json = any;

/** The value of the sample `series` (name and labels as written) in exposition `text`. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

async function getJson(sched: Sched, path: string): Promise<Json> {
  const res = await sched.api(path);
  assertEquals(res.status, 200, `${path}: ${res.status}`);
  return await res.json();
}

/** What /metrics must agree with in a STATUS answer. */
function compared(view: Json): Json {
  const procs = [
    ...(view.Master ? [[view.Master, "master"]] : []),
    ...view.Slaves.map((s: Json) => [s, "slave"]),
  ];
  return {
    Status: view.Status,
    ProcessesRunning: view.ProcessesRunning,
    ProcessesTotal: view.ProcessesTotal,
    Epoch: view.Epoch,
    Capacity: view.Capacity,
    procs: procs.map(([p, role]: [Json, string]) => ({
      Id: p.Id,
      role,
      State: p.State,
      MemoryUsed: p.MemoryUsed,
      MemoryCapacity: p.MemoryCapacity,
      ClientsConnected: p.ClientsConnected,
    })),
  };
}

/**
 * Reads STATUS, /metrics, STATUS until both STATUS answers agree (the
 * metrics were then taken at that same state), and checks the metrics
 * against it; returns the metrics text.
 */
async function metricsMatchStatus(sched: Sched, name: string): Promise<string> {
  return await waitFor(`/metrics and STATUS of ${name} at one moment`, async () => {
    const before = compared(await getJson(sched, `/v1/STATUS/${name}`));
    const res = await sched.api("/metrics");
    const text = await res.text();
    const after = compared(await getJson(sched, `/v1/STATUS/${name}`));
    if (JSON.stringify(before) !== JSON.stringify(after)) return undefined;
    const inst = `instance="${name}"`;
    assertEquals(sample(text, `mrredis_instance_status{${inst},status="${after.Status}"}`), 1);
    assertEquals(
      sample(text, `mrredis_instance_processes_running{${inst}}`),
      after.ProcessesRunning,
    );
    assertEquals(sample(text, `mrredis_instance_processes_wanted{${inst}}`), after.ProcessesTotal);
    assertEquals(sample(text, `mrredis_instance_failovers_total{${inst}}`), after.Epoch);
    assertEquals(sample(text, `mrredis_instance_capacity_bytes{${inst}}`), after.Capacity * MB);
    let used = 0;
    for (const p of after.procs) {
      const labels = `${inst},process="${p.Id}",role="${p.role}"`;
      assertEquals(sample(text, `mrredis_process_memory_used_bytes{${labels}}`), p.MemoryUsed);
      assertEquals(
        sample(text, `mrredis_process_memory_capacity_bytes{${labels}}`),
        p.MemoryCapacity * MB,
      );
      assertEquals(
        sample(text, `mrredis_process_connected_clients{${labels}}`),
        p.ClientsConnected,
      );
      assertEquals(sample(text, `mrredis_process_up{${labels}}`), p.State === "RUNNING" ? 1 : 0);
      used += p.MemoryUsed;
    }
    assertEquals(sample(text, `mrredis_instance_memory_used_bytes{${inst}}`), used);
    return text;
  }, { timeoutMs: 30_000, intervalMs: 100 });
}

Deno.test({
  name:
    "ops e2e: /metrics matches STATUS, EVENTS tells the failover, LOGS reads the executor's log",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await tempDir("e2e-ops");
    const sched = await startSched({
      dir,
      dbType: "embedded",
      master: "local:3",
      config: { APIToken: TOKEN },
      token: TOKEN,
    });
    const mrrEnv = { MRR_ENDPOINT: sched.url, MRR_TOKEN: TOKEN };
    const config = `${dir}/mrr.json`;
    try {
      // /metrics needs the token like every route but HEALTH.
      const anonymous = await fetch(`${sched.url}/metrics`);
      assertEquals(anonymous.status, 401);
      await anonymous.body?.cancel();

      const created = await sched.api("/v1/CREATE/ops1/20/1/1", { method: "POST" });
      assertEquals(created.status, 201, await created.text());
      const view = await waitFor("ops1 RUNNING with its slave in sync", async () => {
        const v = await getJson(sched, "/v1/STATUS/ops1");
        return v.Status === "RUNNING" && v.Slaves.length === 1 && v.Slaves[0].InSync
          ? v
          : undefined;
      }, { timeoutMs: 90_000, intervalMs: 250 });
      const creds = await getJson(sched, "/v1/CREDENTIALS/ops1");
      await withRedis({ ...view.Master, password: creds.Password }, async (r) => {
        for (let i = 0; i < 200; i++) await r.set(`k${i}`, "v".repeat(1000));
      });

      // /metrics: valid for promtool, equal to STATUS at one moment.
      const first = await metricsMatchStatus(sched, "ops1");
      const check = await promtoolCheck(first);
      assertEquals(check.code, 0, check.output);
      assertEquals(sample(first, "mrredis_scheduler_leader"), 1);
      assertEquals(sample(first, "mrredis_mesos_connected"), 1);
      assert(sample(first, "mrredis_offers_received_total")! >= 1, "offers counted");
      assert(
        sample(first, 'mrredis_store_request_duration_seconds_count{op="batch"}')! >= 1,
        "store batches timed",
      );
      assert(
        sample(first, 'mrredis_api_requests_total{route="CREATE",code="201"}') === 1,
        "the CREATE counted",
      );
      assert(sample(first, 'mrredis_api_requests_total{route="metrics",code="401"}') === 1);
      const agents = first.split("\n").filter((l) => l.startsWith("mrredis_agent_processes{"));
      assertEquals(agents.reduce((n, l) => n + Number(l.split(" ")[1]), 0), 2, agents.join("\n"));

      // LOGS through the executor: the master's redis-server log.
      const masterId = view.Master.Id;
      const logs = await getJson(sched, `/v1/LOGS/ops1/${masterId}?lines=20`);
      assertEquals(logs.Process, masterId);
      assert(logs.Lines.length > 0 && logs.Lines.length <= 20, JSON.stringify(logs));
      assert(
        logs.Lines.some((l: string) => /Ready to accept connections/.test(l)),
        JSON.stringify(logs.Lines),
      );
      for (
        const [path, status, text] of [
          ["/v1/LOGS/nope/p1", 404, 'Instance "nope" not found'],
          ["/v1/LOGS/ops1/p9", 404, 'Process "p9" of instance "ops1" not found (it has p1, p2)'],
          ["/v1/LOGS/ops1/x1", 400, 'Process id "x1" is not valid'],
          ["/v1/LOGS/ops1/p1?lines=5000", 400, 'Query "lines" must be a whole number from 1'],
          ["/v1/LOGS/ops1", 400, "LOGS needs /v1/LOGS/{name}/{processId}"],
          ["/v1/EVENTS/nope", 404, 'Instance "nope" not found'],
        ] as const
      ) {
        const res = await sched.api(path);
        const body = await res.text();
        assertEquals(res.status, status, `${path}: ${body}`);
        assert(body.startsWith(text), `${path}: ${body}`);
      }
      const cliLogs = await runMrr(
        config,
        ["logs", "-n", "ops1", "-p", masterId, "--lines", "5"],
        mrrEnv,
      );
      assertEquals(cliLogs.code, 0, show(cliLogs));
      assertEquals(cliLogs.stdout.trim().split("\n").length, 5, show(cliLogs));
      const badCli = await runMrr(
        config,
        ["logs", "-n", "ops1", "-p", "p1", "--lines", "0"],
        mrrEnv,
      );
      assertEquals(badCli.code, 2, show(badCli));
      assertMatch(badCli.stderr, /Option "--lines" must be a whole number of lines from 1 to 1000/);

      // The master is SIGKILLed: a slave is promoted, a replacement launched.
      const killedAt = Date.now();
      const oldPort = await killMasterRedis(view, "SIGKILL");
      const healed = await waitHealed(sched, "ops1", oldPort, 1, 90_000);
      assertEquals(healed.Epoch, 1);

      const events: Json[] = await getJson(sched, "/v1/EVENTS/ops1");
      const kinds = events.map((e) => `${e.Kind} ${e.Process ?? ""}`.trim());
      const lostAt = events.findIndex((e) => e.Kind === "lost" && e.Process === masterId);
      assert(lostAt > 0, `the loss of ${masterId}: ${kinds.join(", ")}`);
      assertEquals(events[lostAt].Role, "master");
      assert(events[lostAt].Reason.length > 0);
      const promoted = events.find((e) => e.Kind === "promoted");
      assert(promoted, kinds.join(", "));
      assertEquals(promoted.OldMaster, masterId);
      assertEquals(promoted.NewMaster, (healed.Master as Json).Id);
      assert(
        promoted.DurationSeconds > 0 && promoted.DurationSeconds * 1000 <= Date.now() - killedAt,
        JSON.stringify(promoted),
      );
      const after = events.slice(lostAt);
      assert(
        after.some((e) => e.Kind === "launched" && e.Process === masterId) &&
          after.some((e) => e.Kind === "running" && e.Process === masterId),
        `the replacement of ${masterId} launched and running: ${kinds.join(", ")}`,
      );
      assertEquals(kinds.slice(0, 2), ["created", `launched ${masterId}`]);

      const second = await metricsMatchStatus(sched, "ops1");
      assertEquals(sample(second, 'mrredis_instance_failovers_total{instance="ops1"}'), 1);
      assertEquals(
        sample(second, 'mrredis_instance_last_failover_duration_seconds{instance="ops1"}'),
        promoted.DurationSeconds,
      );

      const cliEvents = await runMrr(config, ["events", "-n", "ops1"], mrrEnv);
      assertEquals(cliEvents.code, 0, show(cliEvents));
      assertMatch(
        cliEvents.stdout,
        /promoted\s+\S+ promoted to master in place of p\d+ in \d+\.\d\d s/,
      );
      const initOut = await runMrr(config, ["init", sched.url, "--token", TOKEN]);
      assertEquals(initOut.code, 0, show(initOut));
      assertMatch(initOut.stdout, /Health: OK \(role leader, Mesos subscribed, store reachable\)/);

      // DELETE keeps the history, with "deleted" last.
      const del = await sched.api("/v1/DELETE/ops1", { method: "DELETE" });
      assertEquals(del.status, 200, await del.text());
      await waitFor("ops1 deleted, its history kept", async () => {
        const res = await sched.api("/v1/EVENTS/ops1");
        const list = await res.json();
        return list.at(-1)?.Kind === "deleted";
      }, { timeoutMs: 30_000, intervalMs: 200 });
    } catch (error) {
      throw new Error(`${(error as Error).stack}${logTail(sched)}`);
    } finally {
      await sched.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "ops e2e: HEALTH is 503 while the Mesos master is unreachable and 200 once subscribed",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await tempDir("e2e-ops-health");
    const masterPort = takePort();
    const ports = reservePortRange(100);
    const startCluster = () =>
      startLocalCluster({
        agents: 1,
        port: masterPort,
        workDir: `${dir}/mesos`,
        portsBase: ports.base,
        portsPerAgent: 100,
      });
    let { cluster } = await startCluster();
    let sched: Sched | undefined;
    try {
      sched = await startSched({ dir, dbType: "embedded", master: `127.0.0.1:${masterPort}` });
      const health = async () => {
        const res = await fetch(`${sched!.url}/v1/HEALTH`);
        return { status: res.status, body: await res.json() };
      };
      assertEquals(await health(), {
        status: 200,
        body: { Status: "OK", Role: "leader", Mesos: "subscribed", Store: "reachable" },
      });
      await cluster.stop();
      const down = await waitFor("HEALTH 503 without the Mesos master", async () => {
        const h = await health();
        return h.status === 503 ? h : undefined;
      }, { timeoutMs: 30_000, intervalMs: 100 });
      assertEquals(down.body.Status, "UNAVAILABLE");
      assertMatch(down.body.Mesos, /^(connecting|disconnected)$/);
      assertEquals(down.body.Store, "reachable");
      const metrics = await (await fetch(`${sched.url}/metrics`)).text();
      assertEquals(sample(metrics, "mrredis_mesos_connected"), 0);

      ({ cluster } = await startCluster());
      await waitFor(
        "HEALTH 200 once subscribed again",
        async () => (await health()).status === 200,
        {
          timeoutMs: 60_000,
          intervalMs: 200,
        },
      );
      assertEquals((await health()).body.Mesos, "subscribed");
    } catch (error) {
      throw new Error(`${(error as Error).stack}${sched ? logTail(sched) : ""}`);
    } finally {
      await sched?.stop();
      await cluster.stop().catch(() => {});
      ports.release();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
