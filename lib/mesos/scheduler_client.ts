/**
 * A Mesos v1 HTTP scheduler client: subscribes (and re-subscribes forever,
 * with capped exponential backoff and jitter), delivers events in order,
 * watches heartbeats, follows the leading master (lists of masters, 307
 * redirects, `zk://`), fails over with a persisted FrameworkID, and sends
 * calls with the `Mesos-Stream-Id` of the current subscription.
 *
 * @module
 */

import { concat } from "../bytes.ts";
import { type ContentType, decode, encode, ready } from "./codec.ts";
import {
  type DetectedLeader,
  fetchFollowingRedirects,
  type MasterSpec,
  parseMasterSpec,
  ZooKeeperDetector,
} from "./detector.ts";
import { RecordIODecoder, RecordIOError } from "./recordio.ts";
import { Http1Client } from "./http1_client.ts";
import type {
  FrameworkInfo,
  OfferOperation,
  SchedulerCall,
  SchedulerEvent,
  TaskInfo,
} from "./types.ts";

/** Thrown by a call the master answered with a non-2xx status. */
export class MesosCallError extends Error {
  /** Creates the error. */
  constructor(
    /** HTTP status of the answer. */
    readonly status: number,
    /** Body text of the answer. */
    readonly body: string,
    message: string,
  ) {
    super(message);
    this.name = "MesosCallError";
  }
}

/** Thrown by a call made while the client holds no subscription; retry later. */
export class NotSubscribedError extends Error {
  /** Creates the error. */
  constructor(message = "Not subscribed to a Mesos master") {
    super(message);
    this.name = "NotSubscribedError";
  }
}

/** Connection state of a {@link SchedulerClient}. */
export type SchedulerState = "connecting" | "subscribed" | "disconnected";

/** Options of {@link SchedulerClient}. */
export interface SchedulerClientOptions {
  /** `host:port`, `h1:p,h2:p`, `http://host:port`, or `zk://h1:p,h2:p/mesos`. */
  master: string;
  /** The framework to register (without `id`). */
  frameworkInfo: FrameworkInfo;
  /** A persisted FrameworkID to fail over to. */
  frameworkId?: string;
  /** Encoding of calls and events (default protobuf). */
  contentType?: ContentType;
  /** Missed heartbeat intervals before the stream is taken as dead (default 5). */
  heartbeatMissLimit?: number;
  /** Re-subscription backoff bounds (default 500 ms .. 15 s). */
  backoff?: { minMs: number; maxMs: number };
  /** Timeout of ordinary calls in ms (default 75000). */
  callTimeoutMs?: number;
  /** Receives every event in order; the next waits until this settles. */
  onEvent: (event: SchedulerEvent) => void | Promise<void>;
  /** Told of every state change. */
  onStateChange?: (state: SchedulerState) => void;
  /** Log sink. */
  log?: (line: string) => void;
  /**
   * Framework credential, sent as HTTP Basic authentication on every call
   * (masters run with `--authenticate_http_frameworks` answer 401 without).
   */
  credential?: { principal: string; secret: string };
}

/** The `Authorization` header of HTTP Basic authentication for a credential. */
export function basicAuthorization(credential: { principal: string; secret: string }): string {
  const bytes = new TextEncoder().encode(`${credential.principal}:${credential.secret}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

const SCHEDULER_PATH = "/api/v1/scheduler";
const DEFAULT_HEARTBEAT_SECONDS = 15;
/** Calls at once over the HTTP/1.1 client (each takes a keep-alive connection). */
const MAX_CALL_CONNECTIONS = 8;

/** Mesos v1 scheduler client; see the module doc. */
export class SchedulerClient {
  #options: SchedulerClientOptions;
  #spec: MasterSpec;
  #contentType: ContentType;
  #frameworkId: string | undefined;
  #state: SchedulerState = "disconnected";
  #streamId: string | undefined;
  #masterUrl: string | undefined;
  #stopped = true;
  #loop: Promise<void> | undefined;
  #stop = new AbortController();
  #stream: AbortController | undefined;
  #wake: (() => void) | undefined;
  #detector: ZooKeeperDetector | undefined;
  /** Keep-alive connections to the master of the subscription, for calls (plain HTTP only). */
  #http: { origin: string; client: Http1Client } | undefined;

  /** Validates the options; call {@link start} to connect. */
  constructor(options: SchedulerClientOptions) {
    if (!options.frameworkInfo?.user || !options.frameworkInfo?.name) {
      throw new TypeError(`Option "frameworkInfo" needs "user" and "name"`);
    }
    const limit = options.heartbeatMissLimit ?? 5;
    if (!(limit > 0)) {
      throw new RangeError(`Option "heartbeatMissLimit" must be positive, but got ${limit}`);
    }
    const backoff = options.backoff;
    if (backoff && !(backoff.minMs > 0 && backoff.maxMs >= backoff.minMs)) {
      throw new RangeError(`Option "backoff" needs 0 < minMs <= maxMs`);
    }
    this.#spec = parseMasterSpec(options.master);
    this.#options = options;
    this.#contentType = options.contentType ?? "application/x-protobuf";
    this.#frameworkId = options.frameworkId || undefined;
  }

  #auth(): Record<string, string> {
    const credential = this.#options.credential;
    return credential ? { authorization: basicAuthorization(credential) } : {};
  }

  /** The FrameworkID (set after SUBSCRIBED; persist it). */
  get frameworkId(): string | undefined {
    return this.#frameworkId;
  }

  /** Current connection state. */
  get state(): SchedulerState {
    return this.#state;
  }

  /** Base URL of the master of the current subscription. */
  get masterUrl(): string | undefined {
    return this.#masterUrl;
  }

  /** Starts subscribing in the background; keeps at it until {@link stop}. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#stop = new AbortController();
    if (this.#spec.kind === "zk") {
      const spec = this.#spec;
      this.#detector = new ZooKeeperDetector({
        servers: spec.servers,
        path: spec.path,
        ...(spec.auth ? { auth: spec.auth } : {}),
        log: (line) => this.#log(line),
        onChange: (leader) => this.#onLeader(leader),
      });
      this.#detector.start();
    }
    this.#loop = this.#run();
  }

  /** Stops: closes the stream and the detector, waits for the loop to end. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stop.abort();
    this.#stream?.abort();
    this.#wake?.();
    this.#detector?.close();
    this.#detector = undefined;
    this.#http?.client.close();
    this.#http = undefined;
    await this.#loop;
    this.#setState("disconnected");
  }

  #log(line: string): void {
    this.#options.log?.(line);
  }

  #setState(state: SchedulerState): void {
    if (state === this.#state) return;
    this.#state = state;
    this.#options.onStateChange?.(state);
  }

  #onLeader(leader: DetectedLeader | undefined): void {
    if (leader && this.#masterUrl && leader.url !== this.#masterUrl) {
      this.#log(`Leading master moved to ${leader.url}; re-subscribing`);
      this.#stream?.abort();
    }
    this.#wake?.();
  }

  async #candidates(): Promise<string[]> {
    if (this.#spec.kind === "urls") return this.#spec.urls;
    const leader = await this.#detector!.waitForLeader(this.#stop.signal);
    return [leader.url];
  }

  async #run(): Promise<void> {
    let attempt = 0;
    while (!this.#stopped) {
      this.#setState("connecting");
      try {
        for (const base of await this.#candidates()) {
          if (this.#stopped) break;
          try {
            if (await this.#subscribeAt(base)) {
              attempt = 0;
              break;
            }
          } catch (error) {
            if (!this.#stopped) this.#log(`Subscription at ${base} failed: ${errorText(error)}`);
          }
        }
      } catch (error) {
        if (!this.#stopped) this.#log(`Cannot find the leading master: ${errorText(error)}`);
      }
      this.#streamId = undefined;
      this.#setState("disconnected");
      if (this.#stopped) break;
      await this.#sleep(this.#backoff(attempt++));
    }
  }

  #backoff(attempt: number): number {
    const { minMs, maxMs } = this.#options.backoff ?? { minMs: 500, maxMs: 15_000 };
    const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
    return ceiling / 2 + Math.random() * ceiling / 2;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  /**
   * Subscribes at one master and reads its stream until it ends. Returns
   * true when SUBSCRIBED arrived (the backoff then starts over).
   */
  async #subscribeAt(base: string): Promise<boolean> {
    const stream = new AbortController();
    this.#stream = stream;
    const frameworkInfo: FrameworkInfo = { ...this.#options.frameworkInfo };
    delete frameworkInfo.id;
    const call: SchedulerCall = { type: "SUBSCRIBE", subscribe: { framework_info: frameworkInfo } };
    if (this.#frameworkId) {
      frameworkInfo.id = { value: this.#frameworkId };
      call.framework_id = { value: this.#frameworkId };
    }
    this.#log(`Subscribing at ${base}${this.#frameworkId ? ` as ${this.#frameworkId}` : ""}`);
    await ready(this.#contentType);
    const body = encode("mesos.v1.scheduler.Call", call, this.#contentType);
    const answer = await this.#openStream(base, body, stream.signal);
    if (answer.status !== 200) {
      const text = await answer.text().catch(() => "");
      throw new MesosCallError(
        answer.status,
        text,
        `SUBSCRIBE at ${answer.url} answered ${answer.status}: ${text.trim().slice(0, 200)}`,
      );
    }
    const masterUrl = new URL(answer.url).origin;
    const streamId = answer.headers.get("mesos-stream-id") ?? undefined;
    const eventType = (answer.headers.get("content-type") ?? this.#contentType).includes("json")
      ? "application/json"
      : "application/x-protobuf";
    await ready(eventType);
    let subscribed = false;
    let lastEvent = Date.now();
    let intervalMs = DEFAULT_HEARTBEAT_SECONDS * 1000;
    const limit = this.#options.heartbeatMissLimit ?? 5;
    const watchdog = setInterval(() => {
      if (Date.now() - lastEvent > limit * intervalMs) {
        this.#log(`No event from ${masterUrl} for ${limit} heartbeat intervals; re-subscribing`);
        stream.abort();
      }
    }, Math.min(1000, intervalMs / 4));
    try {
      for await (const record of recordsOf(answer.body, stream.signal)) {
        lastEvent = Date.now();
        const event = decode<SchedulerEvent>("mesos.v1.scheduler.Event", record, eventType);
        if (event.type === "SUBSCRIBED" && event.subscribed) {
          subscribed = true;
          this.#frameworkId = event.subscribed.framework_id.value;
          this.#streamId = streamId;
          this.#masterUrl = masterUrl;
          const seconds = event.subscribed.heartbeat_interval_seconds;
          if (seconds && seconds > 0) intervalMs = seconds * 1000;
          this.#log(`Subscribed at ${masterUrl} as ${this.#frameworkId}`);
          this.#setState("subscribed");
        }
        if (event.type === "ERROR") {
          const message = event.error?.message ?? "";
          this.#log(`Mesos ERROR event: ${message}`);
          if (message.includes("Framework has been removed")) {
            this.#log(`Framework ${this.#frameworkId} was removed; subscribing as a new framework`);
            this.#frameworkId = undefined;
          }
          this.#streamId = undefined;
          this.#setState("disconnected");
          await this.#deliver(event);
          return subscribed;
        }
        await this.#deliver(event);
        lastEvent = Date.now();
      }
      this.#log(`Event stream from ${masterUrl} ended`);
    } catch (error) {
      if (!this.#stopped) this.#log(`Event stream from ${masterUrl} broke: ${errorText(error)}`);
    } finally {
      clearInterval(watchdog);
      stream.abort();
      if (this.#stream === stream) this.#stream = undefined;
      // The master may be gone (or restarted): the next subscription's calls
      // start on fresh connections, not on ones it closed meanwhile.
      this.#http?.client.close();
      this.#http = undefined;
    }
    return subscribed;
  }

  /**
   * POSTs a SUBSCRIBE and returns the answer once its head is in: over the
   * small HTTP/1.1 client for a plain `http:` master (its body read straight
   * from the connection: the event stream of a create carries hundreds of
   * events), through `fetch` for `https:` and for a redirect (followed to
   * the leading master). Aborting `signal` ends the body.
   */
  async #openStream(
    base: string,
    body: Uint8Array<ArrayBuffer>,
    signal: AbortSignal,
  ): Promise<StreamAnswer> {
    const headers = {
      "content-type": this.#contentType,
      accept: this.#contentType,
      ...this.#auth(),
    };
    const url = new URL(base + SCHEDULER_PATH);
    if (url.protocol === "http:") {
      const client = new Http1Client(`${url.hostname}:${url.port || "80"}`);
      const answer = await client.stream("POST", url.pathname, headers, body);
      if (answer.status < 300 || answer.status > 399) {
        if (signal.aborted) answer.close();
        else signal.addEventListener("abort", () => answer.close(), { once: true });
        return {
          status: answer.status,
          url: url.href,
          headers: answer.headers,
          body: answer.body,
          text: async () => {
            const pieces: Uint8Array[] = [];
            for await (const piece of answer.body) pieces.push(piece);
            return new TextDecoder().decode(concat(pieces));
          },
        };
      }
      answer.close();
    }
    const { response, url: at } = await fetchFollowingRedirects(url.href, {
      method: "POST",
      headers,
      body,
      signal,
    });
    const empty = (async function* () {})();
    return {
      status: response.body ? response.status : 599,
      url: at,
      headers: response.headers,
      body: response.body ?? empty,
      text: () => response.text(),
    };
  }

  async #deliver(event: SchedulerEvent): Promise<void> {
    try {
      await this.#options.onEvent(event);
    } catch (error) {
      this.#log(`Event handler failed on ${event.type ?? "UNKNOWN"}: ${errorText(error)}`);
    }
  }

  /**
   * The HTTP/1.1 client for calls to `origin` (kept while the master stays
   * the same), or `undefined` when it is not plain `http:` (those go
   * through `fetch`).
   */
  #httpFor(origin: string): Http1Client | undefined {
    if (this.#http?.origin === origin) return this.#http.client;
    this.#http?.client.close();
    this.#http = undefined;
    const url = new URL(origin);
    if (url.protocol !== "http:") return undefined;
    const client = new Http1Client(`${url.hostname}:${url.port || "80"}`, {
      maxIdle: MAX_CALL_CONNECTIONS,
      // A burst of calls (the acknowledgements of a create's status updates)
      // queues for the kept connections instead of opening one each.
      maxRequests: MAX_CALL_CONNECTIONS,
    });
    this.#http = { origin, client };
    return client;
  }

  /**
   * Sends one call; throws on a non-2xx answer. Calls to a plain `http:`
   * master go over keep-alive connections of a small HTTP/1.1 client (a
   * create acknowledges every status update: `fetch` builds a request,
   * headers, signals and body streams for each); a redirect, and `https:`,
   * take `fetch`, which follows it.
   */
  async #call(call: SchedulerCall): Promise<void> {
    const streamId = this.#streamId;
    const masterUrl = this.#masterUrl;
    const frameworkId = this.#frameworkId;
    if (this.#state !== "subscribed" || !streamId || !masterUrl || !frameworkId) {
      throw new NotSubscribedError(`Cannot send ${call.type}: not subscribed to a Mesos master`);
    }
    const body = encode(
      "mesos.v1.scheduler.Call",
      { ...call, framework_id: { value: frameworkId } },
      this.#contentType,
    );
    const timeoutMs = this.#options.callTimeoutMs ?? 75_000;
    const http = this.#httpFor(masterUrl);
    if (http) {
      const answer = await http.request(
        "POST",
        SCHEDULER_PATH,
        { "content-type": this.#contentType, "mesos-stream-id": streamId, ...this.#auth() },
        body,
        timeoutMs,
      );
      if (answer.status < 300 || answer.status > 399) {
        const text = new TextDecoder().decode(answer.body);
        if (answer.status < 200 || answer.status > 299) {
          throw new MesosCallError(
            answer.status,
            text,
            `${call.type} at ${masterUrl}${SCHEDULER_PATH} answered ${answer.status}: ${
              text.trim().slice(0, 200)
            }`,
          );
        }
        return;
      }
    }
    const { response, url } = await fetchFollowingRedirects(masterUrl + SCHEDULER_PATH, {
      method: "POST",
      headers: { "content-type": this.#contentType, "mesos-stream-id": streamId, ...this.#auth() },
      body,
      signal: AbortSignal.any([
        this.#stop.signal,
        AbortSignal.timeout(timeoutMs),
      ]),
    });
    const text = await response.text();
    if (response.status < 200 || response.status > 299) {
      throw new MesosCallError(
        response.status,
        text,
        `${call.type} at ${url} answered ${response.status}: ${text.trim().slice(0, 200)}`,
      );
    }
  }

  /** ACCEPT offers with operations (applied in order). */
  accept(
    offerIds: string[],
    operations: OfferOperation[],
    filters?: { refuse_seconds?: number },
  ): Promise<void> {
    return this.#call({
      type: "ACCEPT",
      accept: { offer_ids: ids(offerIds), operations, ...(filters ? { filters } : {}) },
    });
  }

  /** ACCEPT offers with one LAUNCH of `taskInfos`. */
  launch(
    offerIds: string[],
    taskInfos: TaskInfo[],
    filters?: { refuse_seconds?: number },
  ): Promise<void> {
    return this.accept(offerIds, [{ type: "LAUNCH", launch: { task_infos: taskInfos } }], filters);
  }

  /** DECLINE offers. */
  decline(offerIds: string[], filters?: { refuse_seconds?: number }): Promise<void> {
    return this.#call({
      type: "DECLINE",
      decline: { offer_ids: ids(offerIds), ...(filters ? { filters } : {}) },
    });
  }

  /** REVIVE offers for `roles` (all roles when absent or empty). */
  revive(roles?: string[]): Promise<void> {
    return this.#call({ type: "REVIVE", revive: { roles: roles ?? [] } });
  }

  /** SUPPRESS offers for `roles` (all roles when absent or empty). */
  suppress(roles?: string[]): Promise<void> {
    return this.#call({ type: "SUPPRESS", suppress: { roles: roles ?? [] } });
  }

  /** KILL a task. */
  kill(taskId: string, agentId?: string): Promise<void> {
    return this.#call({
      type: "KILL",
      kill: { task_id: { value: taskId }, ...(agentId ? { agent_id: { value: agentId } } : {}) },
    });
  }

  /** SHUTDOWN an executor. */
  shutdown(executorId: string, agentId: string): Promise<void> {
    return this.#call({
      type: "SHUTDOWN",
      shutdown: { executor_id: { value: executorId }, agent_id: { value: agentId } },
    });
  }

  /** ACKNOWLEDGE a status update (echo its `uuid`). */
  acknowledge(agentId: string, taskId: string, uuid: Uint8Array): Promise<void> {
    return this.#call({
      type: "ACKNOWLEDGE",
      acknowledge: { agent_id: { value: agentId }, task_id: { value: taskId }, uuid },
    });
  }

  /** RECONCILE tasks (an empty list asks for every task the master knows). */
  reconcile(tasks: { taskId: string; agentId?: string }[]): Promise<void> {
    return this.#call({
      type: "RECONCILE",
      reconcile: {
        tasks: tasks.map((t) => ({
          task_id: { value: t.taskId },
          ...(t.agentId ? { agent_id: { value: t.agentId } } : {}),
        })),
      },
    });
  }

  /** MESSAGE an executor (best effort). */
  message(agentId: string, executorId: string, data: Uint8Array): Promise<void> {
    return this.#call({
      type: "MESSAGE",
      message: { agent_id: { value: agentId }, executor_id: { value: executorId }, data },
    });
  }

  /**
   * TEARDOWN the framework (kills all its tasks), then forget its id and
   * stop the client.
   */
  async teardown(): Promise<void> {
    await this.#call({ type: "TEARDOWN" });
    this.#frameworkId = undefined;
    await this.stop();
  }
}

/** The answer to a SUBSCRIBE, however it was fetched. */
interface StreamAnswer {
  status: number;
  /** Where it came from (after redirects). */
  url: string;
  headers: { get(name: string): string | null | undefined };
  body: AsyncIterable<Uint8Array>;
  /** The whole body as text (for an error answer). */
  text(): Promise<string>;
}

/**
 * The records of a RecordIO body as each one completes; throws
 * {@link RecordIOError} for a malformed stream or one that ends inside a
 * record, and an error when `signal` ended it.
 */
async function* recordsOf(
  body: AsyncIterable<Uint8Array>,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array> {
  const decoder = new RecordIODecoder();
  for await (const piece of body) {
    for (const record of decoder.push(piece)) yield record;
  }
  if (signal.aborted) throw new Error("The event stream was aborted");
  if (!decoder.idle) {
    throw new RecordIOError(
      `RecordIO stream ended inside a record (${decoder.buffered} bytes pending)`,
    );
  }
}

function ids(values: string[]): { value: string }[] {
  return values.map((value) => ({ value }));
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
