/**
 * `GET /metrics`: the families built from a core's snapshot, checked with
 * Prometheus' own `promtool check metrics` (Debian package `prometheus`,
 * installed by `deno task setup`), and the request counting and wrappers
 * that feed the counters.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import {
  countRequests,
  isMetricsRequest,
  metricFamilies,
  routeLabel,
  serveMetrics,
} from "../lib/api/metrics.ts";
import { SchedulerCounters } from "../lib/metrics/counters.ts";
import { escapeLabelValue, renderExposition } from "../lib/metrics/exposition.ts";
import { Histogram } from "../lib/metrics/histogram.ts";
import { countingMesos, timedStore } from "../lib/metrics/instrument.ts";
import { openStore } from "../lib/store/mod.ts";
import { tempDir } from "./_util.ts";
import { promtoolCheck } from "./_promtool.ts";
import type { CoreSnapshot, MesosPort } from "../lib/scheduler/core.ts";
import type { ProcessView } from "../lib/scheduler/status_view.ts";
import type { RedisStats } from "../lib/executor_messages.ts";

function proc(id: string, patch: Partial<ProcessView> = {}): ProcessView {
  return {
    IP: "127.0.0.1",
    Port: "7000",
    MemoryCapacity: 100,
    MemoryUsed: 2_000_000,
    Uptime: 5,
    ClientsConnected: 3,
    LastSyncedToMaster: 0,
    Id: id,
    State: "RUNNING",
    InSync: true,
    ...patch,
  };
}

function stats(role: "master" | "slave", replOffset: number, opsPerSec: number): RedisStats {
  return {
    taskId: "t",
    role,
    memoryUsed: 0,
    maxMemory: 0,
    uptime: 0,
    clients: 0,
    replOffset,
    inSync: true,
    lastIoSeconds: 0,
    connectedSlaves: 0,
    opsPerSec,
  };
}

const SNAPSHOT: CoreSnapshot = {
  subscribed: true,
  instances: [{
    view: {
      Name: "cache-1",
      Type: "MS",
      Status: "RUNNING",
      Capacity: 100,
      Master: proc("p2"),
      Slaves: [proc("p1", { MemoryUsed: 1_500_000, LastSyncedToMaster: 1 }), proc("p3")],
      Reason: null,
      Distribution: 1,
      Masters: 1,
      SlavesWanted: 2,
      ProcessesRunning: 3,
      ProcessesTotal: 3,
      Epoch: 1,
      LastEvent: null,
      Update: null,
      Proxies: [],
      ProxiesWanted: 0,
    },
    stats: {
      p2: stats("master", 1000, 250),
      p1: stats("slave", 900, 0),
      p3: stats("slave", 1000, 1),
    },
    lastPromotion: {
      seq: 9,
      at: 1,
      kind: "promoted",
      message: "m",
      newMaster: "p2",
      oldMaster: "p1",
      durationMs: 1250,
    },
  }],
  agents: [{ agentId: 'a"1\\x', processes: 2, memOfferedMB: 4096, memUsedMB: 328 }],
};

/** The value of the sample `name{labels}` in `text` (labels as written, in order). */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

Deno.test("metrics: a leader's families pass promtool and carry STATUS's values", async () => {
  const counters = new SchedulerCounters();
  counters.offersReceived = 7;
  counters.offersDeclined = 2;
  counters.countStore("batch", 0.004, false);
  counters.countStore("batch", 2, true);
  counters.countRequest("STATUS", 200);
  counters.countRequest("STATUS", 404);
  const text = renderExposition(
    metricFamilies({ role: "leader", mesos: "subscribed", counters, snapshot: SNAPSHOT }),
  );
  const check = await promtoolCheck(text);
  assertEquals(check.code, 0, check.output);
  assertEquals(check.output.trim(), "", "no lint complaint");
  assertEquals(sample(text, "mrredis_scheduler_leader"), 1);
  assertEquals(sample(text, 'mrredis_scheduler_role{role="standby"}'), 0);
  assertEquals(sample(text, "mrredis_mesos_connected"), 1);
  assertEquals(sample(text, 'mrredis_mesos_connection_state{state="subscribed"}'), 1);
  assertEquals(sample(text, "mrredis_offers_received_total"), 7);
  assertEquals(sample(text, "mrredis_offers_declined_total"), 2);
  assertEquals(sample(text, 'mrredis_store_request_duration_seconds_count{op="batch"}'), 2);
  assertEquals(
    sample(text, 'mrredis_store_request_duration_seconds_bucket{op="batch",le="0.005"}'),
    1,
  );
  assertEquals(sample(text, 'mrredis_store_request_errors_total{op="batch"}'), 1);
  assertEquals(sample(text, 'mrredis_api_requests_total{route="STATUS",code="404"}'), 1);
  assertEquals(sample(text, 'mrredis_instance_status{instance="cache-1",status="RUNNING"}'), 1);
  assertEquals(sample(text, 'mrredis_instance_status{instance="cache-1",status="DEGRADED"}'), 0);
  assertEquals(sample(text, 'mrredis_instance_processes_running{instance="cache-1"}'), 3);
  assertEquals(sample(text, 'mrredis_instance_processes_wanted{instance="cache-1"}'), 3);
  assertEquals(sample(text, 'mrredis_instance_capacity_bytes{instance="cache-1"}'), 104857600);
  assertEquals(sample(text, 'mrredis_instance_memory_used_bytes{instance="cache-1"}'), 5_500_000);
  assertEquals(sample(text, 'mrredis_instance_failovers_total{instance="cache-1"}'), 1);
  assertEquals(sample(text, 'mrredis_instance_update_in_progress{instance="cache-1"}'), 0);
  assertEquals(
    sample(text, 'mrredis_instance_last_failover_duration_seconds{instance="cache-1"}'),
    1.25,
  );
  const p = (name: string, id: string, role: string) =>
    sample(text, `${name}{instance="cache-1",process="${id}",role="${role}"}`);
  assertEquals(p("mrredis_process_memory_used_bytes", "p1", "slave"), 1_500_000);
  assertEquals(p("mrredis_process_memory_capacity_bytes", "p2", "master"), 104857600);
  assertEquals(p("mrredis_process_connected_clients", "p3", "slave"), 3);
  assertEquals(p("mrredis_process_ops_per_second", "p2", "master"), 250);
  assertEquals(p("mrredis_process_up", "p2", "master"), 1);
  assertEquals(
    sample(text, 'mrredis_slave_replication_lag_bytes{instance="cache-1",process="p1"}'),
    100,
  );
  assertEquals(
    sample(text, 'mrredis_slave_replication_lag_bytes{instance="cache-1",process="p3"}'),
    0,
  );
  assertEquals(sample(text, 'mrredis_slave_last_io_seconds{instance="cache-1",process="p1"}'), 1);
  assertEquals(sample(text, 'mrredis_agent_processes{agent="a\\"1\\\\x"}'), 2);
  assertEquals(
    sample(text, 'mrredis_agent_memory_offered_bytes{agent="a\\"1\\\\x"}'),
    4096 * 1048576,
  );
  assertEquals(sample(text, 'mrredis_agent_memory_used_bytes{agent="a\\"1\\\\x"}'), 328 * 1048576);
});

Deno.test("metrics: a standby shows only the scheduler's families; promtool refuses broken text", async () => {
  const res = serveMetrics({
    role: "standby",
    mesos: "disconnected",
    counters: new SchedulerCounters(),
  });
  assertEquals(res.status, 200);
  assertMatch(res.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  assertEquals((await promtoolCheck(text)).code, 0);
  assertEquals(sample(text, "mrredis_scheduler_leader"), 0);
  assert(!text.includes("mrredis_instance_"), "no instance families on a standby");
  // The check is real: promtool refuses a sample with a bad value.
  const broken = await promtoolCheck('# TYPE x gauge\nx{a="1"} one\n');
  assert(broken.code !== 0, broken.output);
});

Deno.test("metrics: label values are escaped and the histogram is cumulative", () => {
  assertEquals(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  const h = new Histogram([1, 0.1]);
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  assertEquals(h.samples().map((s) => `${s.suffix}${s.labels?.le ?? ""}=${s.value}`), [
    "_bucket0.1=1",
    "_bucket1=2",
    "_bucket+Inf=3",
    "_sum=5.55",
    "_count=3",
  ]);
});

Deno.test("metrics: requests are counted by a bounded route label and their code", async () => {
  assertEquals(routeLabel("/v1/STATUS/x"), "STATUS");
  assertEquals(routeLabel("/v1/status"), "STATUS");
  assertEquals(routeLabel("/v1/NOPE/x"), "other");
  assertEquals(routeLabel("/metrics"), "metrics");
  assertEquals(routeLabel("/ui/app.js"), "ui");
  assertEquals(routeLabel("/"), "ui");
  assertEquals(routeLabel("/favicon.ico"), "other");
  assert(isMetricsRequest(new Request("http://x/metrics")));
  assert(!isMetricsRequest(new Request("http://x/metrics", { method: "POST" })));
  const counters = new SchedulerCounters();
  const handler = countRequests(
    (req: Request) =>
      new URL(req.url).pathname === "/boom"
        ? Promise.reject(new Error("boom"))
        : new Response("", { status: 404 }),
    counters,
  );
  await handler(new Request("http://x/v1/EVENTS/a"));
  await handler(new Request("http://x/boom")).catch(() => {});
  assertEquals(counters.requests(), [
    { route: "EVENTS", code: "404", count: 1 },
    { route: "other", code: "500", count: 1 },
  ]);
});

Deno.test("metrics: the timed store and the counting Mesos port feed the counters", async () => {
  const dir = await tempDir("metrics-store");
  const store = await openStore({ type: "embedded", endpoints: `${dir}/s.db` });
  try {
    const counters = new SchedulerCounters();
    const timed = timedStore(store, counters);
    await timed.put("/a", "1");
    assertEquals((await timed.get("/a"))?.value, "1");
    await timed.batch([{ key: "/b", value: "2" }]);
    await timed.get("bad-key").catch(() => {});
    assertEquals(
      counters.store().map((s) => `${s.op}:${s.seconds.count}:${s.errors}`),
      ["batch:1:0", "get:2:1", "put:1:0"],
    );
    const declined: string[][] = [];
    const port = {
      decline: (ids: string[]) => {
        declined.push(ids);
        return Promise.resolve();
      },
    } as unknown as MesosPort;
    await countingMesos(port, counters).decline(["o1", "o2"], 5);
    assertEquals(declined, [["o1", "o2"]]);
    assertEquals(counters.offersDeclined, 2);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
