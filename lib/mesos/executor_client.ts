/**
 * A Mesos v1 HTTP executor client: reads the agent's environment,
 * subscribes, delivers events in order, sends status updates (kept until
 * ACKNOWLEDGED and resent on re-subscription), and reconnects after losing
 * the agent when the framework checkpoints.
 *
 * Calls go over a small HTTP/1.1 client of its own (`http1_client.ts`,
 * keep-alive connections), not `fetch`: an executor makes a few calls per
 * task it starts, on the event loop that also runs its redis-servers.
 *
 * @module
 */

import { type ContentType, decode, encode, ready } from "./codec.ts";
import { Http1Client, type Http1Stream } from "./http1_client.ts";
import { RecordIODecoder } from "./recordio.ts";
import type {
  ExecutorCall,
  ExecutorEvent,
  TaskInfo,
  TaskState,
  TaskStatus,
  TaskStatusReason,
} from "./types.ts";

/** Thrown when the executor environment is incomplete or malformed. */
export class ExecutorEnvError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ExecutorEnvError";
  }
}

const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  ms: 1,
  secs: 1000,
  mins: 60_000,
  hrs: 3_600_000,
  days: 86_400_000,
  weeks: 604_800_000,
};

/** Parses a stout duration (`15mins`, `2secs`, `1.5mins`, `100ms`) into milliseconds. */
export function parseDuration(text: string): number {
  const match = text.trim().match(/^(\d+(?:\.\d+)?)\s*(ns|us|ms|secs|mins|hrs|days|weeks)$/);
  if (!match) throw new TypeError(`Invalid duration "${text}": expected e.g. "5secs" or "15mins"`);
  return Number(match[1]) * UNITS[match[2]!]!;
}

/** The executor settings the agent passes through the environment. */
export interface ExecutorEnv {
  frameworkId: string;
  executorId: string;
  /** `ip:port` of the agent. */
  agentEndpoint: string;
  checkpoint: boolean;
  /** Only with checkpointing: how long to keep retrying after losing the agent. */
  recoveryTimeoutMs: number;
  /** Only with checkpointing: the cap of each retry delay. */
  subscriptionBackoffMaxMs: number;
  /** Grace period after a SHUTDOWN event. */
  shutdownGracePeriodMs: number;
  /**
   * `MESOS_EXECUTOR_AUTHENTICATION_TOKEN`, sent as a bearer token on every
   * call when the agent authenticates executors.
   */
  authenticationToken?: string;
}

/** Reads {@link ExecutorEnv} from `env`; throws {@link ExecutorEnvError} naming the variable. */
export function readExecutorEnv(env: Record<string, string | undefined>): ExecutorEnv {
  const need = (name: string): string => {
    const value = env[name];
    if (!value) throw new ExecutorEnvError(`Environment variable ${name} is not set`);
    return value;
  };
  const duration = (name: string, fallback: string): number => {
    try {
      return parseDuration(env[name] || fallback);
    } catch (error) {
      throw new ExecutorEnvError(`Environment variable ${name}: ${(error as Error).message}`);
    }
  };
  const checkpointText = env.MESOS_CHECKPOINT ?? "0";
  return {
    frameworkId: need("MESOS_FRAMEWORK_ID"),
    executorId: need("MESOS_EXECUTOR_ID"),
    agentEndpoint: need("MESOS_AGENT_ENDPOINT"),
    checkpoint: checkpointText === "1" || checkpointText === "true",
    recoveryTimeoutMs: duration("MESOS_RECOVERY_TIMEOUT", "15mins"),
    subscriptionBackoffMaxMs: duration("MESOS_SUBSCRIPTION_BACKOFF_MAX", "2secs"),
    shutdownGracePeriodMs: duration("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "5secs"),
    ...(env.MESOS_EXECUTOR_AUTHENTICATION_TOKEN
      ? { authenticationToken: env.MESOS_EXECUTOR_AUTHENTICATION_TOKEN }
      : {}),
  };
}

/** A status update as given to {@link ExecutorClient.update}. */
export interface StatusUpdate {
  task_id: { value: string };
  state: TaskState;
  message?: string;
  reason?: TaskStatusReason;
  data?: Uint8Array;
  healthy?: boolean;
}

/** Options of {@link ExecutorClient}. */
export interface ExecutorClientOptions {
  /** Environment to read (default `Deno.env.toObject()`). */
  env?: Record<string, string>;
  /**
   * Encoding of calls and events (default JSON: the protobuf encoding loads
   * its codec, `protobuf_codec.ts`, which costs the executor's start-up and
   * measured no cheaper per message in a create of 70 singles).
   */
  contentType?: ContentType;
  /** Receives every event in order (ACKNOWLEDGED too, after it is consumed). */
  onEvent: (event: ExecutorEvent) => void | Promise<void>;
  /**
   * Called once when the client gives up on the agent (not checkpointing,
   * or the recovery timeout passed). The program should exit.
   */
  onGiveUp?: (reason: string) => void | Promise<void>;
  /**
   * Delay before an update the agent has not ACKNOWLEDGED is sent again on
   * the open subscription (same uuid; doubles each time up to 16x; default
   * 10000 ms). Updates still unacknowledged when the stream breaks travel
   * in the next SUBSCRIBE instead.
   */
  updateRetryMs?: number;
  /** Log sink. */
  log?: (line: string) => void;
}

/** Thrown by a call the agent answered with a non-2xx status. */
export class ExecutorCallError extends Error {
  /** Creates the error. */
  constructor(
    /** HTTP status of the answer. */
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "ExecutorCallError";
  }
}

/**
 * Calls to the agent at once, each on a keep-alive connection of its own,
 * all kept for the next burst: the TASK_RUNNING updates of the slaves an
 * executor started together (17 of a 1+50 on 3 agents) go at once, not 8 at
 * a time, and a later burst finds its connections open.
 */
const MAX_CALL_CONNECTIONS = 32;

/** Mesos v1 executor client; see the module doc. */
export class ExecutorClient {
  /** The settings read from the environment. */
  readonly env: ExecutorEnv;
  #options: ExecutorClientOptions;
  #contentType: ContentType;
  #url: string;
  readonly #http: Http1Client;
  /** Launched tasks with no ACKNOWLEDGED update yet, by task id. */
  #unackedTasks = new Map<string, TaskInfo>();
  /** Updates not yet ACKNOWLEDGED, by hex uuid, in sending order; they travel in the next SUBSCRIBE. */
  #unackedUpdates = new Map<string, TaskStatus>();
  /** Resend timers of unacknowledged updates, by hex uuid. */
  #retryTimers = new Map<string, ReturnType<typeof setTimeout>>();
  #retryMs: number;
  #subscribed = false;
  #stopped = true;
  #stop = new AbortController();
  #stream: Http1Stream | undefined;
  #loop: Promise<void> | undefined;

  /** Reads the environment (throws {@link ExecutorEnvError}); call {@link start} to connect. */
  constructor(options: ExecutorClientOptions) {
    const retryMs = options.updateRetryMs ?? 10_000;
    if (!(retryMs > 0)) {
      throw new RangeError(`Option "updateRetryMs" must be positive, but got ${retryMs}`);
    }
    this.#retryMs = retryMs;
    this.#options = options;
    this.env = readExecutorEnv(options.env ?? Deno.env.toObject());
    this.#contentType = options.contentType ?? "application/json";
    this.#url = `http://${this.env.agentEndpoint}${EXECUTOR_PATH}`;
    try {
      // A burst of calls (a TASK_RUNNING per task an executor started at
      // once) reuses kept connections instead of opening one each, and a
      // larger one waits for them.
      this.#http = new Http1Client(this.env.agentEndpoint, {
        maxIdle: MAX_CALL_CONNECTIONS,
        maxRequests: MAX_CALL_CONNECTIONS,
      });
    } catch (error) {
      throw new ExecutorEnvError(
        `Environment variable MESOS_AGENT_ENDPOINT: ${(error as Error).message}`,
      );
    }
  }

  /** True while a subscription is open. */
  get subscribed(): boolean {
    return this.#subscribed;
  }

  /** Updates sent but not yet acknowledged by the agent. */
  get unacknowledgedUpdates(): TaskStatus[] {
    return [...this.#unackedUpdates.values()];
  }

  /** Starts subscribing in the background. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#stop = new AbortController();
    this.#loop = this.#run();
  }

  /** Closes the stream and waits for the loop to end (does not call onGiveUp). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stop.abort();
    this.#stream?.close();
    // Calls in flight fail now instead of waiting for their answer.
    this.#http.closeAll();
    this.#clearRetries();
    await this.#loop;
  }

  #clearRetries(): void {
    for (const timer of this.#retryTimers.values()) clearTimeout(timer);
    this.#retryTimers.clear();
  }

  #log(line: string): void {
    this.#options.log?.(line);
  }

  async #run(): Promise<void> {
    let lostAt: number | undefined;
    let attempt = 0;
    while (!this.#stopped) {
      const subscribed = await this.#subscribeOnce().catch((error) => {
        this.#log(`Executor subscription failed: ${(error as Error).message}`);
        return false;
      });
      if (this.#stopped) return;
      if (subscribed) {
        lostAt = undefined;
        attempt = 0;
      }
      lostAt ??= Date.now();
      if (!this.env.checkpoint) {
        return this.#giveUp("Lost the agent and the framework does not checkpoint");
      }
      const left = lostAt + this.env.recoveryTimeoutMs - Date.now();
      if (left <= 0) {
        return this.#giveUp(`Could not reach the agent within ${this.env.recoveryTimeoutMs} ms`);
      }
      // Capped exponential backoff with jitter; the last wait ends at the deadline.
      const cap = Math.min(this.env.subscriptionBackoffMaxMs, 100 * 2 ** Math.min(attempt++, 20));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, cap / 2 + Math.random() * cap / 2));
        this.#stop.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve();
        }, { once: true });
      });
    }
  }

  async #giveUp(reason: string): Promise<void> {
    this.#stopped = true;
    this.#clearRetries();
    this.#log(`Executor gives up: ${reason}`);
    try {
      await this.#options.onGiveUp?.(reason);
    } catch (error) {
      this.#log(`onGiveUp failed: ${(error as Error).message}`);
    }
  }

  #baseCall(): Pick<ExecutorCall, "executor_id" | "framework_id"> {
    return {
      executor_id: { value: this.env.executorId },
      framework_id: { value: this.env.frameworkId },
    };
  }

  async #subscribeOnce(): Promise<boolean> {
    // No await for JSON: the SUBSCRIBE leaves before start() returns.
    if (this.#contentType !== "application/json") await ready(this.#contentType);
    const call: ExecutorCall = {
      ...this.#baseCall(),
      type: "SUBSCRIBE",
      subscribe: {
        unacknowledged_tasks: [...this.#unackedTasks.values()],
        unacknowledged_updates: [...this.#unackedUpdates.values()].map((status) => ({ status })),
      },
    };
    const stream = await this.#http.stream(
      "POST",
      EXECUTOR_PATH,
      { "Content-Type": this.#contentType, Accept: this.#contentType, ...this.#auth() },
      encode("mesos.v1.executor.Call", call, this.#contentType),
    );
    if (this.#stopped) {
      stream.close();
      return false;
    }
    this.#stream = stream;
    if (stream.status !== 200) {
      const text = await readText(stream.body).catch(() => "");
      stream.close();
      throw new Error(`SUBSCRIBE at ${this.#url} answered ${stream.status}: ${text.trim()}`);
    }
    const eventType = (stream.headers.get("content-type") ?? "").includes("json")
      ? "application/json"
      : "application/x-protobuf";
    if (eventType !== "application/json") await ready(eventType);
    let subscribed = false;
    try {
      const records = new RecordIODecoder();
      for await (const piece of stream.body) {
        for (const record of records.push(piece)) {
          const event = decode<ExecutorEvent>("mesos.v1.executor.Event", record, eventType);
          switch (event.type) {
            case "SUBSCRIBED":
              subscribed = true;
              this.#subscribed = true;
              this.#log(`Executor ${this.env.executorId} subscribed at ${this.env.agentEndpoint}`);
              break;
            case "LAUNCH":
              if (event.launch) {
                this.#unackedTasks.set(event.launch.task.task_id.value, event.launch.task);
              }
              break;
            case "ACKNOWLEDGED":
              if (event.acknowledged) {
                const key = uuidKey(event.acknowledged.uuid);
                this.#unackedUpdates.delete(key);
                clearTimeout(this.#retryTimers.get(key));
                this.#retryTimers.delete(key);
                this.#unackedTasks.delete(event.acknowledged.task_id.value);
              }
              break;
            case "ERROR":
              this.#log(`Mesos ERROR event: ${event.error?.message ?? ""}`);
              break;
          }
          try {
            await this.#options.onEvent(event);
          } catch (error) {
            this.#log(`Event handler failed on ${event.type}: ${(error as Error).message}`);
          }
          if (event.type === "SHUTDOWN") this.#log("SHUTDOWN received");
        }
      }
      if (!records.idle && !this.#stopped) {
        throw new Error(`the stream ended inside a record (${records.buffered} bytes pending)`);
      }
      if (!this.#stopped) this.#log("Executor event stream ended");
    } catch (error) {
      if (!this.#stopped) this.#log(`Executor event stream broke: ${(error as Error).message}`);
    } finally {
      this.#subscribed = false;
      stream.close();
      // Whatever is unacknowledged now goes in the next SUBSCRIBE.
      this.#clearRetries();
    }
    return subscribed;
  }

  #auth(): Record<string, string> {
    const token = this.env.authenticationToken;
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  async #post(call: ExecutorCall): Promise<void> {
    if (this.#stopped) throw new Error(`${call.type} at ${this.#url}: the client is stopped`);
    const response = await this.#http.request(
      "POST",
      EXECUTOR_PATH,
      { "Content-Type": this.#contentType, ...this.#auth() },
      encode("mesos.v1.executor.Call", call, this.#contentType),
      CALL_TIMEOUT_MS,
    );
    if (response.status < 200 || response.status > 299) {
      throw new ExecutorCallError(
        response.status,
        `${call.type} at ${this.#url} answered ${response.status}: ${
          new TextDecoder().decode(response.body).trim()
        }`,
      );
    }
  }

  /**
   * Sends a status UPDATE (fills executor_id, uuid, source SOURCE_EXECUTOR,
   * timestamp) and keeps it until the agent ACKNOWLEDGEs it: it is sent
   * again (same uuid) every `updateRetryMs` while subscribed, and in the
   * next SUBSCRIBE if the connection breaks first; while not subscribed
   * (agent restarting) it is only kept for that SUBSCRIBE. A failed send is
   * not an error, except a 4xx answer other than 403 (not subscribed): the
   * agent refused the update itself, so it is dropped and an
   * {@link ExecutorCallError} thrown. Returns the status.
   */
  async update(update: StatusUpdate): Promise<TaskStatus> {
    const status: TaskStatus = {
      ...update,
      executor_id: { value: this.env.executorId },
      source: "SOURCE_EXECUTOR",
      timestamp: Date.now() / 1000,
      uuid: crypto.getRandomValues(new Uint8Array(16)),
    };
    const key = uuidKey(status.uuid!);
    this.#unackedUpdates.set(key, status);
    await this.#sendUpdate(key, status, this.#retryMs);
    return status;
  }

  async #sendUpdate(key: string, status: TaskStatus, delayMs: number): Promise<void> {
    if (!this.#subscribed) {
      // The agent is away (or restarting): the update travels in the next SUBSCRIBE.
      this.#log(`UPDATE ${status.state} for ${status.task_id.value} waits for the next SUBSCRIBE`);
      return;
    }
    try {
      await this.#post({ ...this.#baseCall(), type: "UPDATE", update: { status } });
    } catch (error) {
      // 403: the agent no longer counts us as subscribed (it restarted); the
      // update itself is fine and goes in the next SUBSCRIBE.
      if (
        error instanceof ExecutorCallError && error.status >= 400 && error.status < 500 &&
        error.status !== 403
      ) {
        // Refused for good; kept, it would also make every later SUBSCRIBE fail.
        this.#unackedUpdates.delete(key);
        throw error;
      }
      this.#log(
        `UPDATE ${status.state} for ${status.task_id.value} not delivered yet: ${
          (error as Error).message
        }`,
      );
    }
    if (!this.#unackedUpdates.has(key) || !this.#subscribed || this.#stopped) return;
    clearTimeout(this.#retryTimers.get(key));
    this.#retryTimers.set(
      key,
      setTimeout(() => {
        this.#retryTimers.delete(key);
        if (!this.#unackedUpdates.has(key) || !this.#subscribed || this.#stopped) return;
        this.#log(`Resending unacknowledged UPDATE ${status.state} for ${status.task_id.value}`);
        this.#sendUpdate(key, status, Math.min(delayMs * 2, this.#retryMs * 16)).catch((e) =>
          this.#log(`UPDATE for ${status.task_id.value} refused: ${(e as Error).message}`)
        );
      }, delayMs),
    );
  }

  /** Sends a MESSAGE to the scheduler (best effort). */
  message(data: Uint8Array): Promise<void> {
    return this.#post({ ...this.#baseCall(), type: "MESSAGE", message: { data } });
  }

  /** Sends a HEARTBEAT call. */
  heartbeat(): Promise<void> {
    return this.#post({ ...this.#baseCall(), type: "HEARTBEAT" });
  }
}

/** Where the agent serves the executor API. */
const EXECUTOR_PATH = "/api/v1/executor";

/** Longest wait for the answer to one call. */
const CALL_TIMEOUT_MS = 75_000;

async function readText(body: AsyncIterable<Uint8Array>): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const piece of body) {
    text += decoder.decode(piece, { stream: true });
    if (text.length > 4096) break;
  }
  return text + decoder.decode();
}

function uuidKey(uuid: Uint8Array): string {
  return [...uuid].map((b) => b.toString(16).padStart(2, "0")).join("");
}
