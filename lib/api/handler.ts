/**
 * The REST API as one `fetch(Request) → Promise<Response>` handler:
 *
 * | route | answers |
 * |---|---|
 * | `POST /v1/CREATE/{name}/{capacityMB}/{masters}/{slaves}` | 201, 409, 400 |
 * | `GET /v1/STATUS/{name}` | 200 JSON, 404 |
 * | `GET /v1/STATUS/{name}?wait=DUR&version=V` | the same, once the master version differs from `V` (or after `DUR`) |
 * | `GET /v1/STATUS/{name}?wait=DUR&status=S` | the same, once the instance's Status is one of `S` (or after `DUR`) |
 * | `GET /v1/STATUS` | 200 JSON array |
 * | `DELETE /v1/DELETE/{name}` | 200, 404 |
 * | `PUT /v1/UPDATE/{name}` with `{"Capacity", "Slaves", "Distribution"}` | 202, 200 (nothing to change), 400, 404, 409 |
 * | `GET /v1/CREDENTIALS/{name}` | 200 `{"Name", "User", "Password"}`, 404 |
 * | `GET /v1/EVENTS/{name}` | 200 JSON array of the instance's last events, oldest first; 404 |
 * | `GET /v1/LOGS/{name}/{processId}?lines=N` | 200 JSON with the last N (1-1000, default 100) lines of its redis-server log; 400, 404, 409, 502, 503, 504 |
 * | `GET /`, `/ui`, `/ui/*` | the web UI ({@linkcode serveUi}) |
 *
 * Every bad request gets a 4xx with one line naming what was wrong; anything
 * unexpected becomes a plain 500, logged, with no internals in the answer.
 *
 * @module
 */
import { HttpError } from "./http_error.ts";
import { parseCreate, parseName, parseUpdate } from "./validate.ts";
import type { CreateParams, UpdateParams } from "./validate.ts";
import { StoreUnavailableError } from "../store/store.ts";
import { isUiPath, serveUi } from "../ui/serve.ts";
import type { RequestContext } from "./auth.ts";

/** What {@linkcode InstanceService.create} answers. */
export type CreateResult = "created" | "exists" | "deleting" | { refused: string };

/**
 * What {@linkcode InstanceService.update} answers: accepted, nothing to
 * change, unknown name, or refused (409) with the reason.
 */
export type UpdateResult =
  | "updating"
  | "unchanged"
  | "unknown"
  | { conflict: string }
  | { refused: string };
import { masterVersion } from "../proxy/master_version.ts";
import type { StatusHead } from "../scheduler/status_view.ts";
import { eventView, type InstanceEvent } from "../scheduler/events.ts";
import type { LogsOutcome } from "../scheduler/core.ts";
import { LogRequestError } from "../scheduler/log_requests.ts";
import { parseLogsRequest } from "./logs.ts";

/** Longest `wait` of a STATUS long poll, in ms. */
export const MAX_STATUS_WAIT_MS = 60_000;

/** Parses the `wait` query parameter: seconds (`25`) or `25s`, `500ms`, `1m`. */
function parseWait(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  const ms = m ? Number(m[1]) * (m[2] === "ms" ? 1 : m[2] === "m" ? 60_000 : 1000) : NaN;
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_STATUS_WAIT_MS) {
    throw new HttpError(
      400,
      `Query "wait" must be a duration of at most 60s such as 25s or 500ms, but got ${
        JSON.stringify(text)
      }`,
    );
  }
  return ms;
}

/** Instance statuses a STATUS long poll may wait for. */
const WAITABLE_STATUSES = ["CREATING", "RUNNING", "DEGRADED", "FAILING_OVER", "DELETING"];

/** Parses the `status` query parameter (`RUNNING` or `RUNNING,DEGRADED`); undefined when absent. */
function parseStatusList(text: string | null): Set<string> | undefined {
  if (text === null) return undefined;
  const names = text.split(",").map((s) => s.trim());
  const bad = names.find((n) => !WAITABLE_STATUSES.includes(n));
  if (bad !== undefined) {
    throw new HttpError(
      400,
      `Query "status" must be statuses among ${
        WAITABLE_STATUSES.join(", ")
      } (comma-separated), but got ${JSON.stringify(bad)}`,
    );
  }
  return new Set(names);
}

/** What the API needs from the scheduler. */
export interface InstanceService {
  /**
   * `"exists"` when the name is taken, `"deleting"` while that instance is
   * being deleted, `{refused}` (answered 409) when no agent registered now
   * could ever hold it.
   */
  create(req: CreateParams): Promise<CreateResult>;
  /** `false` when the name is unknown. */
  delete(name: string): Promise<boolean>;
  /** Starts changing an instance (absent: UPDATE answers 404 for every name). */
  update?(req: UpdateParams): Promise<UpdateResult>;
  /** The STATUS JSON object, or `undefined` when unknown. */
  status(name: string): unknown;
  /**
   * `Status`, `Master` and `Epoch` of the STATUS JSON object without the
   * rest (what a long poll compares on every turn), or `undefined` when
   * unknown. Absent: the long poll renders the whole object each turn.
   */
  statusHead?(name: string): StatusHead | undefined;
  /**
   * Calls `listener` after every change of state until the returned function
   * is called. Absent: a long poll checks every 25 ms instead.
   */
  onChange?(listener: () => void): () => void;
  /** Every instance's STATUS JSON object. */
  list(): unknown[];
  /**
   * The clients' password of an instance (`null`: it has none), or
   * `undefined` when the name is unknown. Absent: CREDENTIALS answers 404.
   */
  credentials?(name: string): { password: string | null } | undefined;
  /**
   * The event history of `name`, oldest first, or `undefined` when it has
   * none. Absent: EVENTS answers 404.
   */
  events?(
    name: string,
  ): readonly InstanceEvent[] | undefined | Promise<readonly InstanceEvent[] | undefined>;
  /**
   * The tail of a process's redis-server log (see `Scheduler.logs`); may
   * reject with a `LogRequestError`. Absent: LOGS answers 503.
   */
  logs?(name: string, procId: string, lines: number): Promise<LogsOutcome>;
  /**
   * A number that changes whenever `list()` may answer differently; when
   * given, the serialized list is reused while it stays the same.
   */
  version?(): number;
}

/** Options of {@linkcode createApiHandler}. */
export interface ApiOptions {
  /** Log sink for unexpected errors. */
  log?: (line: string) => void;
  /** Largest request body accepted, bytes (default 64 KiB). */
  maxBodyBytes?: number;
}

const ROUTES: Record<string, string> = {
  CREATE: "POST",
  STATUS: "GET",
  DELETE: "DELETE",
  CREDENTIALS: "GET",
  EVENTS: "GET",
  UPDATE: "PUT",
  LOGS: "GET",
};

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body + "\n", {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}

function json(status: number, value: unknown): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json" },
  });
}

async function readBody(req: Request, max: number): Promise<string> {
  if (!req.body) return "";
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw new HttpError(413, `Body must be at most ${max} bytes`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(all);
  } catch {
    throw new HttpError(400, "Body must be UTF-8 text");
  }
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new HttpError(400, `Path segment ${JSON.stringify(s)} is not valid percent-encoding`);
  }
}

/** Builds the fetch handler over `service`. */
export function createApiHandler(
  service: InstanceService,
  options: ApiOptions = {},
): (req: Request, ctx?: RequestContext) => Promise<Response> {
  const log = options.log ?? ((line: string) => console.error(line));
  const maxBody = options.maxBodyBytes ?? 64 * 1024;
  /** The serialized STATUS list and the service version it was made at. */
  let listCache: { version: number; body: string } | undefined;

  /** Logs a change with who asked: the token's name and the client address. */
  const audit = (what: string, ctx: RequestContext) =>
    log(
      `${what} by ${
        ctx.principal !== undefined ? `token "${ctx.principal}"` : "a client with no token"
      } from ${ctx.client ?? "an unknown address"}`,
    );

  async function route(req: Request, ctx: RequestContext): Promise<Response> {
    const url = new URL(req.url);
    if (isUiPath(url.pathname)) return serveUi(req, url.pathname);
    const raw = url.pathname.split("/").slice(1);
    if (raw.length > 2 && raw[raw.length - 1] === "") raw.pop(); // a trailing slash
    const [v1, verbRaw, ...rest] = raw;
    const verb = verbRaw?.toUpperCase();
    if (v1 !== "v1" || verb === undefined || !(verb in ROUTES)) {
      throw new HttpError(404, `No such route: ${req.method} ${url.pathname}`);
    }
    const method = ROUTES[verb]!;
    if (req.method !== method && !(method === "GET" && req.method === "HEAD")) {
      throw new HttpError(
        405,
        `Method ${req.method} is not allowed on /v1/${verb}; use ${method}`,
        { allow: method === "GET" ? "GET, HEAD" : method },
      );
    }
    const args = rest.map(decodeSegment);
    switch (verb) {
      case "CREATE": {
        if (args.length < 4) {
          throw new HttpError(
            400,
            `CREATE needs /v1/CREATE/{name}/{capacityMB}/{masters}/{slaves}, but got ${url.pathname}`,
          );
        }
        // Extra segments mean the name held a "/": report it as a bad name.
        const name = args.slice(0, args.length - 3).join("/");
        const [capacity, masters, slaves] = args.slice(args.length - 3) as [
          string,
          string,
          string,
        ];
        parseName(name);
        const body = await readBody(req, maxBody);
        const params = parseCreate(name, capacity, masters, slaves, body);
        let result: CreateResult;
        try {
          result = await service.create(params);
        } catch (error) {
          if (error instanceof StoreUnavailableError) {
            log(`CREATE ${name}: ${error.message}`);
            throw new HttpError(
              503,
              `Cannot create instance "${name}" now: the state store is unavailable`,
            );
          }
          throw error;
        }
        if (result === "deleting") {
          throw new HttpError(
            409,
            `Instance "${name}" is being deleted; create it again once it is gone`,
          );
        }
        if (typeof result === "object") throw new HttpError(409, result.refused);
        if (result === "exists") {
          throw new HttpError(409, `Instance "${name}" already exists`);
        }
        audit(
          `CREATE ${name} (${params.capacityMB} MB, ${params.masters} master, ${params.slaves} slave(s))`,
          ctx,
        );
        return text(201, "Request Accepted, Instance will be created.");
      }
      case "STATUS": {
        if (args.length === 0 || (args.length === 1 && args[0] === "")) {
          const version = service.version?.();
          if (version === undefined) return json(200, service.list());
          if (listCache?.version !== version) {
            listCache = { version, body: JSON.stringify(service.list()) };
          }
          return new Response(listCache.body, {
            status: 200,
            headers: { "content-type": "application/json" },
          });
        }
        const name = parseName(args.join("/"));
        const wait = url.searchParams.get("wait");
        const known = url.searchParams.get("version");
        const until = parseStatusList(url.searchParams.get("status"));
        const poll = wait !== null && (known !== null || until !== undefined);
        // Each turn of a long poll compares the few fields it needs; the
        // whole view is rendered once, when it answers.
        const head = (): object | undefined =>
          service.statusHead ? service.statusHead(name) : service.status(name) as object;
        let current = poll ? head() : service.status(name) as object | undefined;
        if (current === undefined) throw new HttpError(404, `Instance "${name}" not found`);
        if (poll) {
          // Long poll: answer once the master or epoch differs from `known`,
          // or once the instance's Status is one of `until`.
          const deadline = Date.now() + parseWait(wait);
          const settled = (v: object) =>
            (known !== null && masterVersion(v) !== known) ||
            (until !== undefined && until.has((v as { Status?: string }).Status ?? ""));
          if (service.onChange && !settled(current) && !req.signal.aborted) {
            // Checked after each change of state, answered at the first that settles it.
            const onChange = service.onChange.bind(service);
            current = await new Promise<object | undefined>((resolve) => {
              const finish = () => {
                off();
                clearTimeout(timer);
                req.signal.removeEventListener("abort", finish);
                resolve(head());
              };
              const timer = setTimeout(finish, Math.max(0, deadline - Date.now()));
              req.signal.addEventListener("abort", finish);
              const off = onChange(() => {
                const now = head();
                if (now === undefined || settled(now)) finish();
              });
            });
            if (current === undefined) throw new HttpError(404, `Instance "${name}" not found`);
          }
          while (!settled(current) && Date.now() < deadline) {
            if (req.signal.aborted) break;
            await new Promise((r) => setTimeout(r, 25));
            current = head();
            if (current === undefined) throw new HttpError(404, `Instance "${name}" not found`);
          }
          current = service.status(name) as object | undefined;
          if (current === undefined) throw new HttpError(404, `Instance "${name}" not found`);
        }
        return json(200, current);
      }
      case "DELETE": {
        if (args.length === 0) {
          throw new HttpError(400, "DELETE needs /v1/DELETE/{name}");
        }
        const name = parseName(args.join("/"));
        if (!(await service.delete(name))) {
          throw new HttpError(404, `Instance "${name}" not found`);
        }
        audit(`DELETE ${name}`, ctx);
        return text(200, "Request Accepted, Instance will be deleted.");
      }
      case "UPDATE": {
        if (args.length === 0 || (args.length === 1 && args[0] === "")) {
          throw new HttpError(400, "UPDATE needs /v1/UPDATE/{name} and a JSON body");
        }
        const name = parseName(args.join("/"));
        const params = parseUpdate(name, await readBody(req, maxBody));
        const result = service.update ? await service.update(params) : "unknown";
        if (result === "unknown") throw new HttpError(404, `Instance "${name}" not found`);
        if (typeof result === "object") {
          throw new HttpError(409, "conflict" in result ? result.conflict : result.refused);
        }
        if (result === "unchanged") {
          return text(200, `Instance "${name}" already has that shape; nothing to change.`);
        }
        audit(`UPDATE ${name} (${JSON.stringify(params)})`, ctx);
        return text(202, "Request Accepted, Instance will be updated.");
      }
      case "CREDENTIALS": {
        if (args.length === 0 || (args.length === 1 && args[0] === "")) {
          throw new HttpError(400, "CREDENTIALS needs /v1/CREDENTIALS/{name}");
        }
        const name = parseName(args.join("/"));
        const found = service.credentials?.(name);
        if (found === undefined) throw new HttpError(404, `Instance "${name}" not found`);
        return new Response(
          JSON.stringify({ Name: name, User: "default", Password: found.password }),
          {
            status: 200,
            headers: { "content-type": "application/json", "cache-control": "no-store" },
          },
        );
      }
      case "EVENTS": {
        if (args.length === 0 || (args.length === 1 && args[0] === "")) {
          throw new HttpError(400, "EVENTS needs /v1/EVENTS/{name}");
        }
        const name = parseName(args.join("/"));
        const events = await service.events?.(name);
        if (events === undefined) {
          throw new HttpError(404, `Instance "${name}" not found (and no event history kept)`);
        }
        return json(200, events.map(eventView));
      }
      case "LOGS": {
        const { name, procId, lines } = parseLogsRequest(args, url.searchParams);
        if (!service.logs) throw new HttpError(503, "This scheduler cannot read logs now");
        let out: LogsOutcome;
        try {
          out = await service.logs(name, procId, lines);
        } catch (error) {
          if (!(error instanceof LogRequestError)) throw error;
          throw new HttpError(
            error.kind === "timeout" ? 504 : 502,
            `Cannot read the log of ${procId} of instance "${name}": ${error.message}`,
          );
        }
        if ("missing" in out) {
          throw new HttpError(
            404,
            out.missing === "instance"
              ? `Instance "${name}" not found`
              : `Process "${procId}" of instance "${name}" not found (it has ${
                out.known.join(", ") || "none"
              })`,
          );
        }
        if ("unavailable" in out) {
          throw new HttpError(
            out.retry ? 503 : 409,
            out.unavailable,
            out.retry ? { "retry-after": "2" } : {},
          );
        }
        return json(200, {
          Name: name,
          Process: procId,
          TaskId: out.taskId,
          AgentId: out.agentId,
          Lines: out.lines,
          Truncated: out.truncated,
        });
      }
    }
    throw new HttpError(404, `No such route: ${req.method} ${url.pathname}`);
  }

  return async (req: Request, ctx: RequestContext = {}): Promise<Response> => {
    try {
      return await route(req, ctx);
    } catch (error) {
      if (error instanceof HttpError) {
        return text(error.status, error.message, error.headers);
      }
      if (error instanceof StoreUnavailableError) {
        log(`${req.method} ${req.url}: ${error.message}`);
        return text(503, "The state store is unavailable; try again later", {
          "retry-after": "5",
        });
      }
      log(`Unexpected error on ${req.method} ${req.url}: ${(error as Error)?.stack ?? error}`);
      return text(500, "Internal Server Error");
    }
  };
}
