/**
 * Helpers for the local Mesos cluster tests: a cluster with short
 * intervals, a raw scheduler subscription (fetch + codec + RecordIO) with
 * an event queue, raw calls, and a raw executor subscription.
 *
 * @module
 */

import { type ContentType, decode, encode } from "../lib/mesos/codec.ts";
import "../lib/mesos/protobuf_codec.ts";
import { readRecords } from "../lib/mesos/recordio.ts";
import { LocalCluster, type LocalClusterOptions } from "../lib/mesos/local/mod.ts";
import { tempDir } from "./_util.ts";

/**
 * How long a test waits for an event that must come. Generous: on a busy
 * machine (other suites running, load far above the core count) a status
 * update or an offer has taken more than 10 s; a test that passes waits no
 * longer for it.
 */
export const EVENT_TIMEOUT_MS = 30_000;

// deno-lint-ignore no-explicit-any
export type Msg = any;

/** Starts a cluster with test-friendly timings; `close()` stops it and removes its folder. */
export async function startTestCluster(
  options: Partial<LocalClusterOptions> = {},
): Promise<{ cluster: LocalCluster; workDir: string; close(): Promise<void> }> {
  const workDir = await tempDir("mesos-local");
  const cluster = new LocalCluster({
    agents: 2,
    workDir,
    heartbeatIntervalSeconds: 15,
    allocationIntervalMs: 100,
    statusUpdateRetryMs: 10_000,
    agentPingTimeoutMs: 300,
    executorShutdownGracePeriodMs: 500,
    ...options,
  });
  await cluster.start();
  return {
    cluster,
    workDir,
    async close() {
      await cluster.stop();
      await Deno.remove(workDir, { recursive: true }).catch(() => {});
    },
  };
}

/** A queue of decoded events read from a RecordIO stream. */
export class EventQueue {
  events: Msg[] = [];
  ended = false;
  #waiters: (() => void)[] = [];
  #consumed = new Set<number>();
  #done: Promise<void>;

  constructor(body: ReadableStream<Uint8Array>, typeName: string, contentType: ContentType) {
    this.#done = (async () => {
      try {
        for await (const record of readRecords(body)) {
          this.events.push(decode(typeName, record, contentType));
          this.#wake();
        }
      } catch {
        // aborted
      }
      this.ended = true;
      this.#wake();
    })();
  }

  #wake() {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Waits for the oldest event matching `pred` not returned before (others stay queued). */
  async next(
    pred: (e: Msg) => boolean = () => true,
    timeoutMs = EVENT_TIMEOUT_MS,
    what = "event",
  ): Promise<Msg> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = 0; i < this.events.length; i++) {
        if (this.#consumed.has(i) || !pred(this.events[i])) continue;
        this.#consumed.add(i);
        return this.events[i];
      }
      if (this.ended) throw new Error(`Stream ended while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `Timed out waiting for ${what}; got ${JSON.stringify(this.events.map((e) => e.type))}`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  /** Resolves when the stream has ended. */
  get done(): Promise<void> {
    return this.#done;
  }
}

/** Waits for an UPDATE of `taskId` in `state` (any state when undefined). */
export function nextUpdate(
  q: EventQueue,
  taskId: string,
  state?: string,
  timeoutMs = EVENT_TIMEOUT_MS,
): Promise<Msg> {
  return q.next(
    (e) =>
      e.type === "UPDATE" && e.update.status.task_id.value === taskId &&
      (state === undefined || e.update.status.state === state),
    timeoutMs,
    `UPDATE ${taskId} ${state ?? ""}`,
  );
}

/** A raw scheduler subscription. */
export interface Subscription {
  frameworkId: string;
  streamId: string;
  contentType: ContentType;
  events: EventQueue;
  response: Response;
  /** Sends a Call on another connection with this subscription's stream id; returns the status. */
  call(body: Msg): Promise<number>;
  /** Drops the connection (client side). */
  close(): Promise<void>;
}

/** A FrameworkInfo for tests. */
export function frameworkInfo(extra: Msg = {}): Msg {
  return { user: "test", name: "local-test", failover_timeout: 60, ...extra };
}

/** Posts a raw scheduler call; returns the Response (body unread). */
export async function postCall(
  url: string,
  body: Uint8Array | string,
  headers: Record<string, string>,
  path = "/api/v1/scheduler",
  signal?: AbortSignal,
): Promise<Response> {
  return await fetch(`${url}${path}`, { method: "POST", headers, body: body as BodyInit, signal });
}

/** Posts a call and returns just its status (body discarded). */
export async function callStatus(
  url: string,
  call: Msg,
  contentType: ContentType,
  headers: Record<string, string> = {},
): Promise<number> {
  const res = await postCall(url, encode("mesos.v1.scheduler.Call", call, contentType), {
    "Content-Type": contentType,
    ...headers,
  });
  await res.body?.cancel();
  return res.status;
}

/** Subscribes a framework; waits for SUBSCRIBED. */
export async function subscribe(
  url: string,
  options: {
    contentType?: ContentType;
    info?: Msg;
    frameworkId?: string;
    suppressedRoles?: string[];
  } = {},
): Promise<Subscription> {
  const contentType = options.contentType ?? "application/json";
  const info = options.info ?? frameworkInfo();
  if (options.frameworkId) info.id = { value: options.frameworkId };
  const abort = new AbortController();
  const response = await postCall(
    url,
    encode("mesos.v1.scheduler.Call", {
      type: "SUBSCRIBE",
      ...(options.frameworkId ? { framework_id: { value: options.frameworkId } } : {}),
      subscribe: {
        framework_info: info,
        ...(options.suppressedRoles ? { suppressed_roles: options.suppressedRoles } : {}),
      },
    }, contentType),
    { "Content-Type": contentType, Accept: contentType },
    "/api/v1/scheduler",
    abort.signal,
  );
  if (response.status !== 200) {
    throw new Error(`SUBSCRIBE answered ${response.status}: ${await response.text()}`);
  }
  const events = new EventQueue(response.body!, "mesos.v1.scheduler.Event", contentType);
  const first = await events.next(() => true, EVENT_TIMEOUT_MS, "SUBSCRIBED");
  if (first.type !== "SUBSCRIBED") {
    throw new Error(`First event was ${first.type}: ${JSON.stringify(first)}`);
  }
  const frameworkId = first.subscribed.framework_id.value;
  const streamId = response.headers.get("Mesos-Stream-Id")!;
  return {
    frameworkId,
    streamId,
    contentType,
    events,
    response,
    call: (body: Msg) =>
      callStatus(url, { framework_id: { value: frameworkId }, ...body }, contentType, {
        "Mesos-Stream-Id": streamId,
      }),
    async close() {
      abort.abort();
      await events.done;
    },
  };
}

/** An ExecutorInfo whose process just sleeps (the test plays the executor itself). */
export function sleepingExecutor(id: string, extra: Msg = {}): Msg {
  return {
    executor_id: { value: id },
    type: "CUSTOM",
    command: { value: "sleep 60" },
    resources: [{ name: "cpus", type: "SCALAR", scalar: { value: 0.1 } }, {
      name: "mem",
      type: "SCALAR",
      scalar: { value: 32 },
    }],
    ...extra,
  };
}

/** A TaskInfo for `offer` using `executor`. */
export function taskInfo(id: string, offer: Msg, executor: Msg, extra: Msg = {}): Msg {
  return {
    name: id,
    task_id: { value: id },
    agent_id: offer.agent_id,
    resources: [
      { name: "cpus", type: "SCALAR", scalar: { value: 0.5 } },
      { name: "mem", type: "SCALAR", scalar: { value: 128 } },
    ],
    executor,
    ...extra,
  };
}

/** ACCEPT with one LAUNCH of `tasks`. */
export function launch(offerIds: string[], tasks: Msg[], filters?: Msg): Msg {
  return {
    type: "ACCEPT",
    accept: {
      offer_ids: offerIds.map((value) => ({ value })),
      operations: [{ type: "LAUNCH", launch: { task_infos: tasks } }],
      ...(filters ? { filters } : {}),
    },
  };
}

/** Waits for an OFFERS event and returns its first offer (optionally from a given agent). */
export async function nextOffer(
  sub: Subscription,
  agentId?: string,
  timeoutMs = EVENT_TIMEOUT_MS,
): Promise<Msg> {
  const e = await sub.events.next(
    (e) =>
      e.type === "OFFERS" &&
      (agentId === undefined || e.offers.offers.some((o: Msg) => o.agent_id.value === agentId)),
    timeoutMs,
    "OFFERS",
  );
  return e.offers.offers.find((o: Msg) => agentId === undefined || o.agent_id.value === agentId);
}

/** A raw executor connection (the test plays the executor). */
export interface ExecutorConn {
  events: EventQueue;
  call(body: Msg): Promise<number>;
  close(): Promise<void>;
}

/** Posts an executor Call to an agent endpoint; returns the status. */
export async function executorCall(
  endpoint: string,
  call: Msg,
  contentType: ContentType = "application/json",
): Promise<number> {
  const res = await fetch(`http://${endpoint}/api/v1/executor`, {
    method: "POST",
    headers: { "Content-Type": contentType },
    body: encode("mesos.v1.executor.Call", call, contentType) as BodyInit,
  });
  await res.body?.cancel();
  return res.status;
}

/** Subscribes as an executor; waits for SUBSCRIBED. */
export async function subscribeExecutor(
  endpoint: string,
  frameworkId: string,
  executorId: string,
  subscribeBody: Msg = {},
  contentType: ContentType = "application/json",
): Promise<ExecutorConn> {
  const ids = { framework_id: { value: frameworkId }, executor_id: { value: executorId } };
  const abort = new AbortController();
  const res = await fetch(`http://${endpoint}/slave(1)/api/v1/executor`, {
    method: "POST",
    headers: { "Content-Type": contentType, Accept: contentType },
    body: encode(
      "mesos.v1.executor.Call",
      { ...ids, type: "SUBSCRIBE", subscribe: subscribeBody },
      contentType,
    ) as BodyInit,
    signal: abort.signal,
  });
  if (res.status !== 200) {
    throw new Error(`Executor SUBSCRIBE answered ${res.status}: ${await res.text()}`);
  }
  const events = new EventQueue(res.body!, "mesos.v1.executor.Event", contentType);
  await events.next((e) => e.type === "SUBSCRIBED", EVENT_TIMEOUT_MS, "executor SUBSCRIBED");
  return {
    events,
    call: (body: Msg) => executorCall(endpoint, { ...ids, ...body }, contentType),
    async close() {
      abort.abort();
      await events.done;
    },
  };
}

/** 16 random bytes. */
export function uuid(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(16));
}

/** An executor UPDATE call body. */
export function executorUpdate(taskId: string, state: string, extra: Msg = {}): Msg {
  return {
    type: "UPDATE",
    update: {
      status: {
        task_id: { value: taskId },
        state,
        source: "SOURCE_EXECUTOR",
        uuid: uuid(),
        ...extra,
      },
    },
  };
}

/** The ACKNOWLEDGE call for an UPDATE event. */
export function ackFor(update: Msg): Msg {
  const s = update.update.status;
  return {
    type: "ACKNOWLEDGE",
    acknowledge: { agent_id: s.agent_id, task_id: s.task_id, uuid: s.uuid },
  };
}
