/**
 * Helpers of the UPDATE tests: send an UPDATE, wait for its end, and a
 * writer that writes with `WAIT 1 1000` through every change of master and
 * remembers what was acknowledged.
 *
 * @module
 */
import type { Redis } from "ioredis";
import { waitFor } from "./_util.ts";
import { redisOf, type Sched, status, type View } from "./_sched.ts";
import { logTail } from "./_failover.ts";

/** STATUS with the fields of an UPDATE. */
export interface UpdateView extends View {
  SlavesWanted: number;
  Distribution: number;
  Update: { Target: Record<string, number>; Phase: string; Started: string } | null;
}

/** PUT /v1/UPDATE/{name} with `body` (an object is sent as JSON, a string as it is). */
export async function update(
  sched: Sched,
  name: string,
  body: unknown,
): Promise<{ status: number; text: string }> {
  const res = await sched.api(`/v1/UPDATE/${name}`, {
    method: "PUT",
    body: typeof body === "string" ? body : JSON.stringify(body),
    headers: { "content-type": "application/json" },
  });
  return { status: res.status, text: (await res.text()).trim() };
}

/**
 * Waits until the update of `name` is over (no `Update` in STATUS), the
 * instance RUNNING with `slaves` slaves; returns the STATUS.
 */
export async function waitUpdated(
  sched: () => Sched,
  name: string,
  slaves: number,
  timeoutMs = 180_000,
): Promise<UpdateView> {
  let last: UpdateView | undefined;
  try {
    return await waitFor(`the update of ${name} to end with ${slaves} slaves`, async () => {
      last = await status(sched(), name) as UpdateView | undefined;
      return last && last.Update === null && last.Status === "RUNNING" &&
          last.Slaves.length === slaves
        ? last
        : undefined;
    }, { timeoutMs, intervalMs: 250 });
  } catch (error) {
    throw new Error(
      `${(error as Error).message}; last STATUS ${JSON.stringify(last)}${logTail(sched(), 80)}`,
    );
  }
}

/** What a {@linkcode Writer} did. */
export interface WriterResult {
  /** Keys whose write was acknowledged (`WAIT 1 1000` counted a replica, or `OK` alone), with their values. */
  acked: Map<string, string>;
  /** Writes tried. */
  attempts: number;
  /** Writes that failed (connection lost, refused). */
  failures: number;
  /** The longest time between two acknowledged writes, ms. */
  longestGapMs: number;
  /** Runs of failed writes between successful ones (each outage counts once). */
  outages: number;
  /** Each outage: when it began (ISO time) and its first error. */
  outageErrors: string[];
}

/**
 * Writes `w:N` keys one after another to the master STATUS names, each
 * followed by `WAIT 1 1000` (unless told not to); follows the master through promotions (a lost
 * connection asks STATUS again). `NOREPLICAS` (the master waits for a
 * replica to count) is retried on the same connection.
 */
export class Writer {
  readonly #sched: () => Sched;
  readonly #name: string;
  #stopped = false;
  readonly #done: Promise<WriterResult>;

  readonly #waitReplica: boolean;

  /**
   * Starts writing to instance `name` of `sched()` (a getter: the scheduler
   * may be restarted). With `waitReplica` false (a single server), a write
   * counts as acknowledged on the master's `OK`, with no `WAIT`.
   */
  constructor(sched: () => Sched, name: string, options: { waitReplica?: boolean } = {}) {
    this.#sched = sched;
    this.#name = name;
    this.#waitReplica = options.waitReplica ?? true;
    this.#done = this.#run();
  }

  async #run(): Promise<WriterResult> {
    const result: WriterResult = {
      acked: new Map(),
      attempts: 0,
      failures: 0,
      longestGapMs: 0,
      outages: 0,
      outageErrors: [],
    };
    let failing = false;
    let client: Redis | undefined;
    let lastAck = Date.now();
    let i = 0;
    while (!this.#stopped) {
      try {
        if (!client) {
          const view = await status(this.#sched(), this.#name);
          if (!view?.Master) throw new Error("no master");
          client = redisOf(view.Master);
          // Errors are seen on the commands; the event would only be noise.
          client.on("error", () => {});
          await client.connect();
        }
        const key = `w:${i}`;
        const value = `v${i}`;
        result.attempts++;
        await client.set(key, value);
        const replicas = this.#waitReplica ? await client.call("WAIT", "1", "1000") as number : 1;
        i++;
        failing = false;
        if (replicas >= 1) {
          result.acked.set(key, value);
          const now = Date.now();
          result.longestGapMs = Math.max(result.longestGapMs, now - lastAck);
          lastAck = now;
        }
      } catch (error) {
        result.failures++;
        if (!failing) {
          result.outages++;
          result.outageErrors.push(`${new Date().toISOString()} ${(error as Error).message}`);
        }
        failing = true;
        if (!/NOREPLICAS/.test((error as Error).message ?? "")) {
          client?.disconnect();
          client = undefined;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    client?.disconnect();
    return result;
  }

  /** Stops writing; resolves with what was written. */
  stop(): Promise<WriterResult> {
    this.#stopped = true;
    return this.#done;
  }
}

/**
 * Stops `writer`, prints what it did, checks it got more than 100 writes
 * acknowledged, and returns its result with the acknowledged keys missing
 * on the master STATUS of `name` names now.
 */
export async function stopWriter(
  writer: Writer,
  sched: Sched,
  name: string,
): Promise<WriterResult & { missing: string[] }> {
  const result = await writer.stop();
  const view = (await status(sched, name))!;
  const missing = await missingKeys(view.Master!, result.acked);
  console.log(
    `writer: ${result.attempts} writes, ${result.acked.size} acknowledged, ${result.failures} failed, ` +
      `${result.outages} outage(s), longest gap between acknowledged writes ${result.longestGapMs} ms`,
  );
  if (result.acked.size <= 100) {
    throw new Error(`only ${result.acked.size} writes acknowledged`);
  }
  return { ...result, missing };
}

/** The acknowledged keys missing (or with another value) on `master`. */
export async function missingKeys(
  master: View["Master"] & object,
  acked: Map<string, string>,
): Promise<string[]> {
  const r = redisOf(master);
  await r.connect();
  try {
    const keys = [...acked.keys()];
    const missing: string[] = [];
    for (let i = 0; i < keys.length; i += 500) {
      const chunk = keys.slice(i, i + 500);
      const got = await r.mget(...chunk);
      chunk.forEach((k, j) => {
        if (got[j] !== acked.get(k)) missing.push(k);
      });
    }
    return missing;
  } finally {
    r.disconnect();
  }
}

/** `maxmemory` of the redis-server behind `p`, in MB (INFO memory). */
export async function maxMemoryMB(p: View["Master"] & object): Promise<number> {
  const r = redisOf(p);
  await r.connect();
  try {
    const info = await r.info("memory");
    const m = /maxmemory:(\d+)/.exec(info);
    return m ? Number(m[1]) / 1024 / 1024 : NaN;
  } finally {
    r.disconnect();
  }
}
