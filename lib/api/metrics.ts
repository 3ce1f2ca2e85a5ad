/**
 * `GET /metrics`: the scheduler, its instances and the agents in the
 * Prometheus text format. Names carry the `mrredis_` prefix, counters end in
 * `_total`, sizes in `_bytes`, durations in `_seconds`.
 *
 * | family | labels | what |
 * |---|---|---|
 * | `mrredis_scheduler_leader` | | 1 while this scheduler leads |
 * | `mrredis_scheduler_role` | `role` | 1 for the current role (`leader`, `taking-over`, `standby`) |
 * | `mrredis_mesos_connected` | | 1 while subscribed to Mesos |
 * | `mrredis_mesos_connection_state` | `state` | 1 for the current state (`connecting`, `subscribed`, `disconnected`) |
 * | `mrredis_offers_received_total`, `mrredis_offers_declined_total` | | offers from Mesos, and those declined whole |
 * | `mrredis_store_request_duration_seconds` | `op` | histogram of the store calls of the core (`batch`, `get`, `list`, ...) |
 * | `mrredis_store_request_errors_total` | `op` | store calls that failed |
 * | `mrredis_api_requests_total` | `route`, `code` | answered API requests (`route`: the `/v1` verb, `metrics`, `ui` or `other`) |
 * | `mrredis_instance_status` | `instance`, `status` | 1 for the instance's STATUS `Status` |
 * | `mrredis_instance_processes_running`, `_wanted` | `instance` | `ProcessesRunning`, `ProcessesTotal` |
 * | `mrredis_instance_capacity_bytes`, `mrredis_instance_memory_used_bytes` | `instance` | `Capacity` of one process, `MemoryUsed` of them all |
 * | `mrredis_instance_failovers_total` | `instance` | changes of master (`Epoch`) |
 * | `mrredis_instance_update_in_progress` | `instance` | 1 while an UPDATE (scale, resize) runs |
 * | `mrredis_instance_last_failover_duration_seconds` | `instance` | the last promotion's duration (from the old master's loss), once there was one |
 * | `mrredis_process_up` | `instance`, `process`, `role` | 1 when the process's task is RUNNING |
 * | `mrredis_process_memory_used_bytes`, `_capacity_bytes` | same | redis `used_memory`; `maxmemory` asked |
 * | `mrredis_process_connected_clients` | same | redis `connected_clients` |
 * | `mrredis_process_ops_per_second` | same | redis `instantaneous_ops_per_sec` |
 * | `mrredis_slave_replication_lag_bytes` | `instance`, `process` | master offset − slave offset |
 * | `mrredis_slave_last_io_seconds` | `instance`, `process` | `LastSyncedToMaster` |
 * | `mrredis_agent_processes` | `agent` | our live processes there |
 * | `mrredis_agent_memory_offered_bytes`, `_used_bytes` | `agent` | memory it makes available to us; what our tasks hold |
 *
 * Instance and agent families come from the leader only: a standby shows the
 * scheduler families (with `mrredis_scheduler_leader 0`). The values are one
 * snapshot of the core, the same views `GET /v1/STATUS` serves.
 *
 * @module
 */
import type { CoreSnapshot } from "../scheduler/core.ts";
import type { ProcessView } from "../scheduler/status_view.ts";
import type { SchedulerCounters } from "../metrics/counters.ts";
import { EXPOSITION_CONTENT_TYPE, type Family, renderExposition } from "../metrics/exposition.ts";
import type { Role } from "./health.ts";

/** Every role, for the state-set family. */
const ROLES: readonly Role[] = ["leader", "taking-over", "standby"];
/** Every Mesos connection state. */
const MESOS_STATES = ["connecting", "subscribed", "disconnected"];
/** Every instance status. */
const STATUSES = ["CREATING", "RUNNING", "DEGRADED", "FAILING_OVER", "DELETING"];
/** The `/v1` verbs counted by name (anything else is `other`). */
const VERBS = new Set([
  "CREATE",
  "STATUS",
  "DELETE",
  "CREDENTIALS",
  "EVENTS",
  "HEALTH",
  "LOGS",
  "UPDATE",
]);

const MB = 1024 * 1024;

/** What the metrics are made of, at one moment. */
export interface MetricsState {
  role: Role;
  /** The Mesos connection state (`subscribed`, ...). */
  mesos: string;
  counters: SchedulerCounters;
  /** The core's snapshot; only while leading. */
  snapshot?: CoreSnapshot;
}

/** The metric families of `state` (see the module doc). */
export function metricFamilies(state: MetricsState): Family[] {
  const c = state.counters;
  const families: Family[] = [
    {
      name: "mrredis_scheduler_leader",
      help: "1 while this scheduler leads (acts on Mesos and writes the store), else 0",
      type: "gauge",
      samples: [{ value: state.role === "leader" ? 1 : 0 }],
    },
    {
      name: "mrredis_scheduler_role",
      help: "1 for this scheduler's current role in the election",
      type: "gauge",
      samples: ROLES.map((role) => ({ labels: { role }, value: state.role === role ? 1 : 0 })),
    },
    {
      name: "mrredis_mesos_connected",
      help: "1 while this scheduler is subscribed to the Mesos master",
      type: "gauge",
      samples: [{ value: state.mesos === "subscribed" ? 1 : 0 }],
    },
    {
      name: "mrredis_mesos_connection_state",
      help: "1 for the current state of the connection to the Mesos master",
      type: "gauge",
      samples: MESOS_STATES.map((s) => ({
        labels: { state: s },
        value: state.mesos === s ? 1 : 0,
      })),
    },
    {
      name: "mrredis_offers_received_total",
      help: "Resource offers received from Mesos",
      type: "counter",
      samples: [{ value: c.offersReceived }],
    },
    {
      name: "mrredis_offers_declined_total",
      help: "Resource offers declined whole",
      type: "counter",
      samples: [{ value: c.offersDeclined }],
    },
    {
      name: "mrredis_store_request_duration_seconds",
      help: "Duration of the scheduler's calls to its state store, by operation",
      type: "histogram",
      samples: c.store().flatMap((s) => s.seconds.samples({ op: s.op })),
    },
    {
      name: "mrredis_store_request_errors_total",
      help: "Calls to the state store that failed, by operation",
      type: "counter",
      samples: c.store().map((s) => ({ labels: { op: s.op }, value: s.errors })),
    },
    {
      name: "mrredis_api_requests_total",
      help: "REST API requests answered, by route and status code",
      type: "counter",
      samples: c.requests().map((r) => ({
        labels: { route: r.route, code: r.code },
        value: r.count,
      })),
    },
  ];
  if (state.snapshot) families.push(...instanceFamilies(state.snapshot));
  return families;
}

function instanceFamilies(snapshot: CoreSnapshot): Family[] {
  const gauge = (name: string, help: string): Family => ({
    name,
    help,
    type: "gauge",
    samples: [],
  });
  const status = gauge("mrredis_instance_status", "1 for the instance's status as STATUS shows it");
  const running = gauge(
    "mrredis_instance_processes_running",
    "Processes of the instance whose task is RUNNING",
  );
  const wanted = gauge(
    "mrredis_instance_processes_wanted",
    "Processes the instance asks for (masters + slaves)",
  );
  const capacity = gauge(
    "mrredis_instance_capacity_bytes",
    "Memory asked for each process of the instance (its maxmemory)",
  );
  const used = gauge(
    "mrredis_instance_memory_used_bytes",
    "Memory redis reports used, summed over the instance's processes",
  );
  const failovers: Family = {
    name: "mrredis_instance_failovers_total",
    help: "Changes of master of the instance (its epoch)",
    type: "counter",
    samples: [],
  };
  const lastFailover = gauge(
    "mrredis_instance_last_failover_duration_seconds",
    "Duration of the instance's last promotion, from the old master's loss to the new master taking writes",
  );
  const updating = gauge(
    "mrredis_instance_update_in_progress",
    "1 while a change of the instance (UPDATE: scale or resize) runs",
  );
  const up = gauge("mrredis_process_up", "1 when the process's task is RUNNING");
  const pUsed = gauge(
    "mrredis_process_memory_used_bytes",
    "Memory redis reports used (used_memory)",
  );
  const pCap = gauge("mrredis_process_memory_capacity_bytes", "The process's maxmemory");
  const clients = gauge("mrredis_process_connected_clients", "Clients connected to the process");
  const ops = gauge(
    "mrredis_process_ops_per_second",
    "Commands per second the process serves (instantaneous_ops_per_sec)",
  );
  const lag = gauge(
    "mrredis_slave_replication_lag_bytes",
    "How far the slave's replication offset is behind its master's",
  );
  const lastIo = gauge(
    "mrredis_slave_last_io_seconds",
    "Seconds since the slave last heard from its master (-1 while the link is down)",
  );
  for (const { view, stats, lastPromotion } of snapshot.instances) {
    const instance = view.Name;
    for (const s of STATUSES) {
      status.samples.push({ labels: { instance, status: s }, value: view.Status === s ? 1 : 0 });
    }
    running.samples.push({ labels: { instance }, value: view.ProcessesRunning });
    wanted.samples.push({ labels: { instance }, value: view.ProcessesTotal });
    capacity.samples.push({ labels: { instance }, value: view.Capacity * MB });
    failovers.samples.push({ labels: { instance }, value: view.Epoch });
    updating.samples.push({ labels: { instance }, value: view.Update ? 1 : 0 });
    if (lastPromotion?.durationMs !== undefined) {
      lastFailover.samples.push({ labels: { instance }, value: lastPromotion.durationMs / 1000 });
    }
    const procs: [ProcessView, "master" | "slave"][] = [
      ...(view.Master ? [[view.Master, "master"] as [ProcessView, "master"]] : []),
      ...view.Slaves.map((s) => [s, "slave"] as [ProcessView, "slave"]),
    ];
    used.samples.push({
      labels: { instance },
      value: procs.reduce((n, [p]) => n + p.MemoryUsed, 0),
    });
    const masterOffset = view.Master ? stats[view.Master.Id]?.replOffset : undefined;
    for (const [p, role] of procs) {
      const labels = { instance, process: p.Id, role };
      up.samples.push({ labels, value: p.State === "RUNNING" ? 1 : 0 });
      pUsed.samples.push({ labels, value: p.MemoryUsed });
      pCap.samples.push({ labels, value: p.MemoryCapacity * MB });
      clients.samples.push({ labels, value: p.ClientsConnected });
      ops.samples.push({ labels, value: stats[p.Id]?.opsPerSec ?? 0 });
      if (role !== "slave") continue;
      const offset = stats[p.Id]?.replOffset;
      if (masterOffset !== undefined && offset !== undefined && stats[p.Id]?.role === "slave") {
        lag.samples.push({
          labels: { instance, process: p.Id },
          value: Math.max(0, masterOffset - offset),
        });
      }
      lastIo.samples.push({ labels: { instance, process: p.Id }, value: p.LastSyncedToMaster });
    }
  }
  const agentProcs = gauge(
    "mrredis_agent_processes",
    "Live processes of this framework on the agent",
  );
  const offered = gauge(
    "mrredis_agent_memory_offered_bytes",
    "Memory the agent makes available to this framework (offered plus what it holds there)",
  );
  const held = gauge(
    "mrredis_agent_memory_used_bytes",
    "Memory this framework's tasks and executor hold on the agent",
  );
  for (const a of snapshot.agents) {
    const labels = { agent: a.agentId };
    agentProcs.samples.push({ labels, value: a.processes });
    offered.samples.push({ labels, value: a.memOfferedMB * MB });
    held.samples.push({ labels, value: a.memUsedMB * MB });
  }
  return [
    status,
    running,
    wanted,
    capacity,
    used,
    failovers,
    lastFailover,
    updating,
    up,
    pUsed,
    pCap,
    clients,
    ops,
    lag,
    lastIo,
    agentProcs,
    offered,
    held,
  ];
}

/** Whether `request` is `GET` (or `HEAD`) `/metrics`. */
export function isMetricsRequest(request: Request): boolean {
  return (request.method === "GET" || request.method === "HEAD") &&
    /^\/metrics\/?$/.test(new URL(request.url).pathname);
}

/** Answers `GET /metrics` with the families of `state`. */
export function serveMetrics(state: MetricsState): Response {
  return new Response(renderExposition(metricFamilies(state)), {
    status: 200,
    headers: { "content-type": EXPOSITION_CONTENT_TYPE, "cache-control": "no-store" },
  });
}

/** The `route` label of a request: its `/v1` verb, `metrics`, `ui` or `other` (a bounded set). */
export function routeLabel(pathname: string): string {
  const m = /^\/v1\/([A-Za-z]+)(\/|$)/.exec(pathname);
  if (m) {
    const verb = m[1]!.toUpperCase();
    return VERBS.has(verb) ? verb : "other";
  }
  if (/^\/metrics\/?$/.test(pathname)) return "metrics";
  if (pathname === "/" || /^\/ui(\/|$)/.test(pathname)) return "ui";
  return "other";
}

/** `handler` with every answer counted by route and status code into `counters`. */
export function countRequests<A extends unknown[]>(
  handler: (request: Request, ...rest: A) => Response | Promise<Response>,
  counters: SchedulerCounters,
): (request: Request, ...rest: A) => Promise<Response> {
  return async (request, ...rest) => {
    const route = routeLabel(new URL(request.url).pathname);
    try {
      const response = await handler(request, ...rest);
      counters.countRequest(route, response.status);
      return response;
    } catch (error) {
      counters.countRequest(route, 500);
      throw error;
    }
  };
}
