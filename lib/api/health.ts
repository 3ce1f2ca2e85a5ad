/**
 * `GET /v1/HEALTH`: whether this scheduler is ready to serve every route —
 * it leads, it is subscribed to Mesos, and its store answers. 200 when all
 * three hold, 503 otherwise; the JSON body names each part's state, so that
 * a load balancer, a supervisor or a test waits for a state the scheduler
 * really reached rather than for a first answer.
 *
 * @module
 */

/** What the scheduler is doing in the election. */
export type Role = "leader" | "taking-over" | "standby";

/** The parts of readiness, as the program sees them now. */
export interface HealthParts {
  role: Role;
  /** The Mesos connection: `subscribed`, `connecting`, `disconnected`, ... */
  mesos: string;
  /** `undefined` when the store answered; otherwise why not. */
  storeError: string | undefined;
}

/** The body of a HEALTH answer. */
export interface HealthBody {
  /** `OK` or `UNAVAILABLE`. */
  Status: "OK" | "UNAVAILABLE";
  Role: Role;
  Mesos: string;
  /** `reachable`, or `unreachable: <why>`. */
  Store: string;
}

/** The status code and body for `parts`: 200 only for a subscribed leader with its store. */
export function healthAnswer(parts: HealthParts): { status: 200 | 503; body: HealthBody } {
  const ok = parts.role === "leader" && parts.mesos === "subscribed" &&
    parts.storeError === undefined;
  return {
    status: ok ? 200 : 503,
    body: {
      Status: ok ? "OK" : "UNAVAILABLE",
      Role: parts.role,
      Mesos: parts.role === "leader" ? parts.mesos : `${parts.mesos} (not leading)`,
      Store: parts.storeError === undefined ? "reachable" : `unreachable: ${parts.storeError}`,
    },
  };
}

/** Whether `request` is `GET` (or `HEAD`) `/v1/HEALTH`. */
export function isHealthRequest(request: Request): boolean {
  return (request.method === "GET" || request.method === "HEAD") &&
    /^\/v1\/HEALTH\/?$/i.test(new URL(request.url).pathname);
}

/** Answers `GET /v1/HEALTH` from `probe` (see {@linkcode healthAnswer}). */
export async function serveHealth(probe: () => Promise<HealthParts>): Promise<Response> {
  const { status, body } = healthAnswer(await probe());
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store" },
  });
}
