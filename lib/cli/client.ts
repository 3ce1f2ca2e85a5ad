/**
 * A small client for the scheduler's REST API (see DESIGN.md, "REST API").
 * Every call has a timeout; every failure becomes a {@linkcode CommandError}
 * whose message says what went wrong in words a user can act on.
 *
 * @module
 */

import { CommandError } from "./errors.ts";
import { formatDuration } from "./flags.ts";

/** One redis process in STATUS JSON. Fields are the original's. */
export interface ProcessStatus {
  /** Address of the agent running it. */
  IP?: string;
  /** A string in the original; a number is accepted too. */
  Port?: string | number;
  /** maxmemory, MB. */
  MemoryCapacity?: number;
  /** Bytes in use. */
  MemoryUsed?: number;
  /** Seconds since the process started. */
  Uptime?: number;
  /** Connected clients. */
  ClientsConnected?: number;
  /** Seconds since the last sync with the master (slaves). */
  LastSyncedToMaster?: number;
  /** Fields added by newer schedulers. */
  [field: string]: unknown;
}

/** One instance in STATUS JSON. Fields other than these are kept and printed by `--json`. */
export interface InstanceStatus {
  /** The instance name. */
  Name: string;
  /** `S`, `MS` or `RC` (Redis Cluster). */
  Type: string;
  /** `CREATING`, `RUNNING`, `DEGRADED`, `DELETING`, ... */
  Status: string;
  /** MB. */
  Capacity: number;
  /** The master (or the single server); null before one runs. */
  Master: ProcessStatus | null;
  /** The slaves; null or empty for a single server. */
  Slaves: ProcessStatus[] | null;
  /** Why the instance is not RUNNING, when the scheduler says. */
  Reason?: string;
  /** Processes up, when the scheduler reports it. */
  ProcessesRunning?: number;
  /** Processes wanted, when the scheduler reports it. */
  ProcessesTotal?: number;
  /** A Redis Cluster's shards (`Master`/`Slaves` are then the first shard's). */
  Shards?: ShardStatus[];
  /** Running proxy endpoints (follow the master), when the scheduler has proxies. */
  Proxies?: ProcessStatus[];
  /** Fields added by newer schedulers. */
  [field: string]: unknown;
}

/** One event of `GET /v1/EVENTS/{name}`. */
export interface EventEntry {
  Seq: number;
  /** ISO time. */
  Time: string;
  /** `created`, `launched`, `running`, `lost`, `promoted`, ... */
  Kind: string;
  /** The event in one sentence. */
  Message: string;
  /** Other fields (`Process`, `DurationSeconds`, ...). */
  [field: string]: unknown;
}

/** The answer of `GET /v1/LOGS/{name}/{procId}`. */
export interface LogsAnswer {
  Name: string;
  Process: string;
  TaskId: string;
  AgentId: string;
  Lines: string[];
  Truncated: boolean;
}

/** The answer of `GET /v1/HEALTH`. */
export interface HealthAnswer {
  /** `OK` or `UNAVAILABLE`. */
  Status: string;
  Role: string;
  Mesos: string;
  Store: string;
}

/** One shard of a Redis Cluster instance in STATUS. */
export interface ShardStatus {
  /** Its slots, e.g. `0-5460`. */
  Slots: string;
  /** Its master; null while it has none. */
  Master: ProcessStatus | null;
  Slaves: ProcessStatus[] | null;
}

/** The default timeout of one HTTP call. */
export const DEFAULT_HTTP_TIMEOUT_MS = 10_000;

/** The hint shown when the scheduler cannot be reached. */
export const UNREACHABLE_HINT =
  'Check that the scheduler is running there, or point mrr at it with "mrr init http://HOST:5656"';

/** An HTTP answer: status and body text. */
export interface Answer {
  /** HTTP status code. */
  status: number;
  /** Body as text. */
  text: string;
}

function shortReason(error: unknown): string {
  const messages: string[] = [];
  for (let e: unknown = error; e !== undefined && messages.length < 5; e = (e as Error)?.cause) {
    messages.push(e instanceof Error ? e.message : String(e));
  }
  const message = messages.join(": ");
  if (/connection refused/i.test(message)) return "connection refused";
  if (/dns error|failed to lookup|name or service not known/i.test(message)) {
    return "the host name does not resolve";
  }
  if (/certificate|tls|ssl/i.test(message)) return `TLS failed (${message})`;
  if (/connection reset/i.test(message)) return "connection reset";
  if (/unreachable/i.test(message)) return "network unreachable";
  if (/timed out/i.test(message)) return "connection timed out";
  return messages[messages.length - 1] ?? message;
}

function firstLine(text: string): string {
  const trimmed = text.trim();
  try {
    const data = JSON.parse(trimmed) as Record<string, unknown>;
    const field = data?.error ?? data?.message ?? data?.Error ?? data?.Message;
    if (typeof field === "string") return field;
  } catch {
    // plain text
  }
  const line = trimmed.split(/\r?\n/, 1)[0] ?? "";
  return line.length > 300 ? `${line.slice(0, 300)}...` : line;
}

/** The hint shown when the scheduler wants an API token. */
export const TOKEN_HINT =
  'Run "mrr init http://HOST:5656 --token TOKEN" with a token the scheduler accepts, or set MRR_TOKEN';

/** Describes an unexpected answer: `the scheduler refused the request: bad capacity (400)`. */
export function describeAnswer(answer: Answer): string {
  const body = firstLine(answer.text);
  const what = answer.status >= 500 ? "the scheduler failed" : "the scheduler refused the request";
  return `${what}${body ? `: ${body}` : ""} (${answer.status})`;
}

/** Talks to one scheduler. */
export class SchedulerClient {
  /** Base URL, e.g. `http://10.0.0.1:5656`. */
  readonly endpoint: string;
  /** Timeout of each call in ms. */
  readonly timeoutMs: number;
  /** The API token sent as `Authorization: Bearer`, if any. */
  readonly token: string | undefined;

  /** Creates a client for `endpoint`. */
  constructor(
    endpoint: string,
    { timeoutMs = DEFAULT_HTTP_TIMEOUT_MS, token }: { timeoutMs?: number; token?: string } = {},
  ) {
    this.endpoint = endpoint;
    this.timeoutMs = timeoutMs;
    this.token = token || undefined;
  }

  /** A client for the same endpoint with another per-call timeout. */
  withTimeout(timeoutMs: number): SchedulerClient {
    return new SchedulerClient(this.endpoint, {
      timeoutMs,
      ...(this.token ? { token: this.token } : {}),
    });
  }

  async #call(method: string, path: string, body?: string): Promise<Answer> {
    const url = `${this.endpoint}${path}`;
    const signal = AbortSignal.timeout(this.timeoutMs);
    let answer: Answer;
    try {
      const headers: Record<string, string> = {};
      if (this.token) headers.authorization = `Bearer ${this.token}`;
      const init: RequestInit = { method, signal, headers };
      if (body !== undefined) {
        init.body = body;
        headers["content-type"] = "application/json";
      }
      const response = await fetch(url, init);
      answer = { status: response.status, text: await response.text() };
    } catch (error) {
      if (signal.aborted) {
        throw new CommandError(
          `the scheduler at ${this.endpoint} did not answer within ${
            formatDuration(this.timeoutMs)
          }`,
          { hint: UNREACHABLE_HINT, cause: error },
        );
      }
      throw new CommandError(
        `cannot reach the scheduler at ${this.endpoint}: ${shortReason(error)}`,
        { hint: UNREACHABLE_HINT, cause: error },
      );
    }
    if (answer.status === 401) {
      throw new CommandError(describeAnswer(answer), { status: 401, hint: TOKEN_HINT });
    }
    return answer;
  }

  #json(answer: Answer, path: string): unknown {
    try {
      return JSON.parse(answer.text);
    } catch (error) {
      throw new CommandError(
        `the scheduler at ${this.endpoint} answered ${path} with something that is not JSON: ${
          firstLine(answer.text) || "(empty)"
        }`,
        { cause: error, hint: "Is this endpoint a mr-redis scheduler?" },
      );
    }
  }

  /** `GET /v1/STATUS`: every instance. */
  async list(): Promise<InstanceStatus[]> {
    const path = "/v1/STATUS";
    const answer = await this.#call("GET", path);
    if (answer.status !== 200) {
      throw new CommandError(describeAnswer(answer), {
        status: answer.status,
        hint: answer.status === 404 ? "Is this endpoint a mr-redis scheduler?" : undefined,
      });
    }
    const data = this.#json(answer, path);
    if (data === null) return [];
    if (!Array.isArray(data)) {
      throw new CommandError(`the scheduler answered ${path} with JSON that is not a list`);
    }
    return data.map((item) => checkInstance(item, path));
  }

  /**
   * `GET /v1/STATUS/{name}`: one instance, or undefined when the scheduler
   * does not know it. With `until`, a long poll (`?wait=...&status=...`)
   * answered as soon as the instance's Status is `until.status`, or after
   * `until.waitMs` as it is then.
   */
  async status(
    name: string,
    until?: { status: string; waitMs: number },
  ): Promise<InstanceStatus | undefined> {
    const path = `/v1/STATUS/${encodeURIComponent(name)}${
      until ? `?wait=${Math.round(until.waitMs)}ms&status=${encodeURIComponent(until.status)}` : ""
    }`;
    const answer = await this.#call("GET", path);
    if (answer.status === 404) return undefined;
    if (answer.status !== 200) {
      throw new CommandError(describeAnswer(answer), { status: answer.status });
    }
    return checkInstance(this.#json(answer, path), path);
  }

  /**
   * `GET /v1/STATUS/{name}?wait=...&version=...`: a long poll answered once the
   * instance's master version (see lib/proxy/master_version.ts) differs from
   * `version`, or after `waitSeconds`. Returns the status code and, for 200,
   * the instance.
   */
  async statusWait(
    name: string,
    version: string,
    waitSeconds: number,
  ): Promise<Answer & { json?: InstanceStatus }> {
    const path = `/v1/STATUS/${encodeURIComponent(name)}?wait=${waitSeconds}s&version=${
      encodeURIComponent(version)
    }`;
    const answer = await this.#call("GET", path);
    if (answer.status !== 200) return answer;
    return { ...answer, json: checkInstance(this.#json(answer, path), path) };
  }

  /**
   * `POST /v1/CREATE/{name}/{capacityMB}/{masters}/{slaves}` with an optional
   * JSON `body`. Returns the scheduler's text; throws on anything but 201/200.
   */
  async create(
    name: string,
    capacityMB: number,
    masters: number,
    slaves: number,
    body?: string,
  ): Promise<string> {
    const path = `/v1/CREATE/${encodeURIComponent(name)}/${capacityMB}/${masters}/${slaves}`;
    const answer = await this.#call("POST", path, body);
    if (answer.status === 201 || answer.status === 200) return answer.text.trim();
    // 409 also says an instance is being deleted, or that no agent could hold it: its text then.
    if (answer.status === 409 && /already exists/.test(answer.text)) {
      throw new CommandError(`instance "${name}" already exists (409)`, {
        status: 409,
        hint: `Run "mrr status -n ${name}" to see it, or pick another name`,
      });
    }
    throw new CommandError(describeAnswer(answer), { status: answer.status });
  }

  /** `GET /v1/CREDENTIALS/{name}`: the clients' password (`null`: the instance has none). */
  async credentials(
    name: string,
  ): Promise<{ Name: string; User: string; Password: string | null }> {
    const path = `/v1/CREDENTIALS/${encodeURIComponent(name)}`;
    const answer = await this.#call("GET", path);
    if (answer.status === 404) throw notFound(name);
    if (answer.status !== 200) {
      throw new CommandError(describeAnswer(answer), {
        status: answer.status,
        hint: answer.status === 405 || answer.status === 400
          ? "This scheduler may be older than passwords"
          : undefined,
      });
    }
    const data = this.#json(answer, path) as { Password?: unknown; User?: unknown } | null;
    if (
      typeof data !== "object" || data === null ||
      (typeof data.Password !== "string" && data.Password !== null)
    ) {
      throw new CommandError(`the scheduler answered ${path} with JSON that has no "Password"`);
    }
    return {
      Name: name,
      User: typeof data.User === "string" ? data.User : "default",
      Password: data.Password as string | null,
    };
  }

  /**
   * `PUT /v1/UPDATE/{name}` with a JSON `body`: 202 (accepted) or 200
   * (nothing to change) with the scheduler's text; throws on anything else.
   */
  async update(name: string, body: string): Promise<Answer> {
    const path = `/v1/UPDATE/${encodeURIComponent(name)}`;
    const answer = await this.#call("PUT", path, body);
    if (answer.status === 202 || answer.status === 200) {
      return { status: answer.status, text: answer.text.trim() };
    }
    if (answer.status === 404) throw notFound(name);
    throw new CommandError(describeAnswer(answer), {
      status: answer.status,
      hint: answer.status === 405 ? "This scheduler may be older than UPDATE" : undefined,
    });
  }

  /** `GET /v1/EVENTS/{name}`: the instance's event history, oldest first. */
  async events(name: string): Promise<EventEntry[]> {
    const path = `/v1/EVENTS/${encodeURIComponent(name)}`;
    const answer = await this.#call("GET", path);
    if (answer.status === 404) throw notFound(name);
    if (answer.status !== 200) {
      throw new CommandError(describeAnswer(answer), { status: answer.status });
    }
    const data = this.#json(answer, path);
    if (!Array.isArray(data) || data.some((e) => typeof e?.Kind !== "string")) {
      throw new CommandError(
        `the scheduler answered ${path} with JSON that is not a list of events`,
      );
    }
    return data as EventEntry[];
  }

  /** `GET /v1/LOGS/{name}/{procId}?lines=N`: the tail of a process's redis-server log. */
  async logs(name: string, procId: string, lines: number): Promise<LogsAnswer> {
    const path = `/v1/LOGS/${encodeURIComponent(name)}/${
      encodeURIComponent(procId)
    }?lines=${lines}`;
    const answer = await this.#call("GET", path);
    if (answer.status !== 200) {
      throw new CommandError(describeAnswer(answer), { status: answer.status });
    }
    const data = this.#json(answer, path) as Partial<LogsAnswer> | null;
    if (!Array.isArray(data?.Lines)) {
      throw new CommandError(`the scheduler answered ${path} with JSON that has no "Lines"`);
    }
    return data as LogsAnswer;
  }

  /**
   * `GET /v1/HEALTH`: whether the scheduler leads, is subscribed to Mesos and
   * reaches its store (`undefined` from a scheduler without the route).
   */
  async health(): Promise<HealthAnswer | undefined> {
    const answer = await this.#call("GET", "/v1/HEALTH");
    if (answer.status !== 200 && answer.status !== 503) return undefined;
    try {
      const data = JSON.parse(answer.text) as HealthAnswer;
      return typeof data?.Status === "string" ? data : undefined;
    } catch {
      return undefined;
    }
  }

  /** `DELETE /v1/DELETE/{name}`. Returns the scheduler's text; throws on 404 and failures. */
  async delete(name: string): Promise<string> {
    const path = `/v1/DELETE/${encodeURIComponent(name)}`;
    const answer = await this.#call("DELETE", path);
    if (answer.status >= 200 && answer.status < 300) return answer.text.trim();
    if (answer.status === 404) throw notFound(name);
    throw new CommandError(describeAnswer(answer), { status: answer.status });
  }
}

/** The error for an instance the scheduler does not know. */
export function notFound(name: string): CommandError {
  return new CommandError(`instance "${name}" does not exist (404)`, {
    status: 404,
    hint: 'Run "mrr status" to list the instances',
  });
}

function checkInstance(data: unknown, path: string): InstanceStatus {
  const item = data as Partial<InstanceStatus> | null;
  if (
    typeof item !== "object" || item === null || Array.isArray(item) ||
    typeof item.Name !== "string" || typeof item.Status !== "string"
  ) {
    throw new CommandError(
      `the scheduler answered ${path} with JSON that is not an instance status (no "Name"/"Status")`,
    );
  }
  return item as InstanceStatus;
}
