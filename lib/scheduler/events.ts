/**
 * The event history of every instance: its last {@linkcode EVENT_LIMIT}
 * notable events (created, a process launched / running / lost, a promotion,
 * a fencing, a resize, a scale, the deletion), kept in the store so that a
 * restarted or new leader shows the same timeline.
 *
 * Store layout: one key per event, `{prefix}/events/{name}/{seq}` with `seq`
 * a zero-padded number that grows by one per event of that name (gaps are
 * possible: the events of a batch that failed are dropped with it). The
 * history of a name lives outside `{prefix}/instances/{name}`, so a DELETE
 * keeps it: the last event is `deleted`, and the history goes
 * {@linkcode DELETED_HISTORY_MS} later (unless an instance of that name is
 * created again: its history goes on after the `deleted` event).
 *
 * {@linkcode EventHistory} is the in-memory copy the scheduler core writes
 * through: {@linkcode EventHistory.record} changes memory at once and
 * returns the store writes (the new key, and deletes of what fell out of the
 * limit) that the core puts in the same batch as the state change the event
 * describes, so an event is stored if and only if its change is. The
 * `*Event` builders make the event of each kind with its sentence.
 *
 * @module
 */
import type { BatchWrite, Entry, Store } from "../store/store.ts";

/** How many events each instance keeps. */
export const EVENT_LIMIT = 100;

/** How long the history of a deleted instance stays (24 h). */
export const DELETED_HISTORY_MS = 24 * 60 * 60 * 1000;

/** What happened. */
export type EventKind =
  | "created"
  | "launched"
  | "running"
  | "lost"
  | "promoted"
  | "fenced"
  | "resized"
  | "scaled"
  | "deleted";

/** Every {@linkcode EventKind}, in the order of an instance's life. */
export const EVENT_KINDS: readonly EventKind[] = [
  "created",
  "launched",
  "running",
  "lost",
  "promoted",
  "fenced",
  "resized",
  "scaled",
  "deleted",
];

/** An event as the core records it (before it gets its number and time). */
export interface NewEvent {
  kind: EventKind;
  /** The event in one sentence, e.g. `p2 promoted to master in place of p1 in 1.24 s`. */
  message: string;
  /** The process concerned (`p3`), when one is. */
  procId?: string;
  /** Its Mesos task id. */
  taskId?: string;
  /** `host:port` of the process. */
  address?: string;
  /** Agent id of the process. */
  agentId?: string;
  /** `lost`: the role the process had (`master` or `slave`). */
  role?: string;
  /** Why (a loss, a fencing). */
  reason?: string;
  /** `promoted`: the process that was master. */
  oldMaster?: string;
  /** `promoted`: the new master. */
  newMaster?: string;
  /** `promoted`: from the old master's loss to the new master taking writes, ms. */
  durationMs?: number;
  /** `promoted`: the new epoch. */
  epoch?: number;
  /** `resized` (MB) and `scaled` (slaves): the value before. */
  from?: number;
  /** `resized` (MB) and `scaled` (slaves): the value after. */
  to?: number;
}

/** An event as stored and served. */
export interface InstanceEvent extends NewEvent {
  /** Number within the instance's history (grows by one per event). */
  seq: number;
  /** When, ms since the epoch. */
  at: number;
}

/** What one {@linkcode EventHistory.record} did, to undo it when its batch fails. */
export interface RecordedEvent {
  name: string;
  event: InstanceEvent;
  /** The store writes: the new key, and deletes of the events that fell out. */
  writes: BatchWrite[];
  /** Events that fell out of the limit (restored by {@linkcode EventHistory.undo}). */
  dropped: InstanceEvent[];
}

/** The key prefix of every history, e.g. `/mr-redis/events`. */
export function eventsPrefix(prefix: string): string {
  return `${prefix.replace(/\/+$/, "")}/events`;
}

/** The key of one event. */
export function eventKey(prefix: string, name: string, seq: number): string {
  return `${eventsPrefix(prefix)}/${name}/${String(seq).padStart(12, "0")}`;
}

const KINDS = new Set<string>(EVENT_KINDS);

/** Reads one stored event; `undefined` when it is not one. */
function parseEvent(value: string): InstanceEvent | undefined {
  try {
    const e = JSON.parse(value) as InstanceEvent;
    if (
      typeof e !== "object" || e === null || !Number.isInteger(e.seq) ||
      typeof e.at !== "number" || !KINDS.has(e.kind) || typeof e.message !== "string"
    ) return undefined;
    return e;
  } catch {
    return undefined;
  }
}

/**
 * Groups stored entries listed under {@linkcode eventsPrefix} by instance
 * name, each history sorted by `seq` and cut to its last `limit` events.
 * Unreadable values are skipped (named through `log`).
 */
export function parseHistories(
  prefix: string,
  entries: readonly Entry[],
  limit = EVENT_LIMIT,
  log: (line: string) => void = () => {},
): Map<string, InstanceEvent[]> {
  const base = `${eventsPrefix(prefix)}/`;
  const out = new Map<string, InstanceEvent[]>();
  for (const e of entries) {
    if (!e.key.startsWith(base)) continue;
    const parts = e.key.slice(base.length).split("/");
    if (parts.length !== 2 || !parts[0]) continue;
    const event = parseEvent(e.value);
    if (!event) {
      log(`Skipping unreadable event key "${e.key}"`);
      continue;
    }
    const list = out.get(parts[0]) ?? [];
    list.push(event);
    out.set(parts[0], list);
  }
  for (const [name, list] of out) {
    list.sort((a, b) => a.seq - b.seq);
    if (list.length > limit) out.set(name, list.slice(list.length - limit));
  }
  return out;
}

/**
 * Reads the history of `name` straight from the store (what a standby
 * serves), oldest first; `undefined` when there is none.
 */
export async function readHistory(
  store: Store,
  prefix: string,
  name: string,
  limit = EVENT_LIMIT,
): Promise<InstanceEvent[] | undefined> {
  const entries = await store.list(`${eventsPrefix(prefix)}/${name}`);
  return parseHistories(prefix, entries, limit).get(name);
}

/**
 * The store writes of several recorded events, for one batch: an event put
 * and deleted in the same batch (more than the limit recorded at once) is
 * neither, so every key appears once.
 */
export function eventWrites(recorded: readonly RecordedEvent[]): BatchWrite[] {
  const byKey = new Map<string, BatchWrite>();
  for (const r of recorded) {
    for (const w of r.writes) {
      if ("delete" in w && byKey.has(w.key) && !("delete" in byKey.get(w.key)!)) {
        byKey.delete(w.key); // put in this batch: it never reaches the store
      } else byKey.set(w.key, w);
    }
  }
  return [...byKey.values()];
}

/** The in-memory histories of every instance (see the module doc). */
export class EventHistory {
  readonly #prefix: string;
  readonly #limit: number;
  readonly #byName = new Map<string, InstanceEvent[]>();
  /** The next seq of each name (never reused, even after a failed batch). */
  readonly #nextSeq = new Map<string, number>();

  /** Creates an empty history; `limit` events per instance (default {@linkcode EVENT_LIMIT}). */
  constructor(options: { prefix: string; limit?: number }) {
    this.#prefix = options.prefix.replace(/\/+$/, "");
    this.#limit = options.limit ?? EVENT_LIMIT;
    if (!Number.isInteger(this.#limit) || this.#limit < 1) {
      throw new RangeError(
        `Option "limit" must be a positive whole number, but got ${this.#limit}`,
      );
    }
  }

  /** The key prefix the histories live under (list it and pass the entries to {@linkcode load}). */
  get keyPrefix(): string {
    return eventsPrefix(this.#prefix);
  }

  /**
   * Replaces the memory with the entries listed under {@linkcode keyPrefix};
   * returns the deletes of stored events beyond the limit (left by an
   * interrupted write, or a smaller limit).
   */
  load(entries: readonly Entry[], log?: (line: string) => void): BatchWrite[] {
    this.#byName.clear();
    this.#nextSeq.clear();
    const all = parseHistories(this.#prefix, entries, Infinity, log);
    const extra: BatchWrite[] = [];
    for (const [name, list] of all) {
      const keep = list.slice(Math.max(0, list.length - this.#limit));
      for (const e of list.slice(0, list.length - keep.length)) {
        extra.push({ key: eventKey(this.#prefix, name, e.seq), delete: true });
      }
      this.#byName.set(name, keep);
      this.#nextSeq.set(name, (list[list.length - 1]?.seq ?? 0) + 1);
    }
    return extra;
  }

  /**
   * Appends `event` to the history of `name` at time `at`: memory changes at
   * once; the returned writes must go to the store (in the batch of the
   * change it describes). Give the result to {@linkcode undo} if that batch fails.
   */
  record(name: string, event: NewEvent, at: number): RecordedEvent {
    const seq = this.#nextSeq.get(name) ?? 1;
    this.#nextSeq.set(name, seq + 1);
    const full: InstanceEvent = { ...dropUndefined(event), seq, at };
    const list = this.#byName.get(name) ?? [];
    list.push(full);
    const dropped = list.length > this.#limit ? list.splice(0, list.length - this.#limit) : [];
    this.#byName.set(name, list);
    const writes: BatchWrite[] = [
      { key: eventKey(this.#prefix, name, seq), value: JSON.stringify(full) },
      ...dropped.map((e) => ({ key: eventKey(this.#prefix, name, e.seq), delete: true as const })),
    ];
    return { name, event: full, writes, dropped };
  }

  /** Takes back what `recorded` did in memory (its batch failed, so the store has none of it). */
  undo(recorded: readonly RecordedEvent[]): void {
    const added = new Set(recorded.map((r) => `${r.name}\n${r.event.seq}`));
    const byName = new Map<string, InstanceEvent[]>();
    for (const r of recorded) {
      const back = byName.get(r.name) ?? [];
      back.push(...r.dropped.filter((e) => !added.has(`${r.name}\n${e.seq}`)));
      byName.set(r.name, back);
    }
    for (const [name, back] of byName) {
      const list = (this.#byName.get(name) ?? []).filter((e) => !added.has(`${name}\n${e.seq}`));
      list.push(...back);
      list.sort((a, b) => a.seq - b.seq);
      if (list.length === 0) this.#byName.delete(name);
      else this.#byName.set(name, list);
    }
  }

  /** The history of `name`, oldest first; `undefined` when it has none. */
  events(name: string): readonly InstanceEvent[] | undefined {
    return this.#byName.get(name);
  }

  /** Every name with a history. */
  names(): string[] {
    return [...this.#byName.keys()];
  }

  /** The most recent event of `name` that `test` accepts. */
  last(name: string, test: (e: InstanceEvent) => boolean): InstanceEvent | undefined {
    const list = this.#byName.get(name) ?? [];
    for (let i = list.length - 1; i >= 0; i--) if (test(list[i]!)) return list[i];
    return undefined;
  }

  /**
   * Forgets the history of `name` and returns the deletes of its keys (the
   * caller may instead use `deletePrefix` of {@linkcode historyPrefix}).
   */
  forget(name: string): BatchWrite[] {
    const list = this.#byName.get(name) ?? [];
    this.#byName.delete(name);
    return list.map((e) => ({ key: eventKey(this.#prefix, name, e.seq), delete: true as const }));
  }

  /** The key prefix of the history of `name`. */
  historyPrefix(name: string): string {
    return `${eventsPrefix(this.#prefix)}/${name}`;
  }

  /**
   * Names whose history is expired at `now`: no instance of that name
   * exists (`exists` says), and its last event is a `deleted` older than
   * `keepMs`.
   */
  expired(now: number, exists: (name: string) => boolean, keepMs = DELETED_HISTORY_MS): string[] {
    const out: string[] = [];
    for (const [name, list] of this.#byName) {
      const last = list[list.length - 1];
      if (exists(name) || !last) continue;
      if (last.kind === "deleted" && now - last.at >= keepMs) out.push(name);
    }
    return out;
  }
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

// ---- the events of each kind ----

/** Seconds with two decimals, for sentences. */
function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** `created`: an instance was accepted. */
export function createdEvent(
  o: { type: string; capacityMB: number; slaves: number; distribution: number },
): NewEvent {
  return {
    kind: "created",
    message:
      `Created: ${o.type}, ${o.capacityMB} MB, ${o.slaves} slave(s), Distribution ${o.distribution}`,
    to: o.capacityMB,
  };
}

/** `launched`: a process's task was sent to an agent. */
export function launchedEvent(
  o: { procId: string; taskId: string; role: string; address: string; agentId: string },
): NewEvent {
  return {
    kind: "launched",
    message: `${o.procId} launched as ${o.role} on ${o.address} (agent ${o.agentId})`,
    procId: o.procId,
    taskId: o.taskId,
    address: o.address,
    agentId: o.agentId,
  };
}

/** `running`: a process's task reported TASK_RUNNING. */
export function runningEvent(
  o: { procId: string; taskId: string; address?: string | undefined },
): NewEvent {
  return {
    kind: "running",
    message: `${o.procId} is running${o.address ? ` on ${o.address}` : ""}`,
    procId: o.procId,
    taskId: o.taskId,
    ...(o.address ? { address: o.address } : {}),
  };
}

/** `lost`: a process ended or was judged lost, with why. */
export function lostEvent(
  o: { procId: string; taskId: string; reason: string; master: boolean },
): NewEvent {
  return {
    kind: "lost",
    message: `${o.procId}${o.master ? " (master)" : ""} lost: ${o.reason}`,
    procId: o.procId,
    taskId: o.taskId,
    role: o.master ? "master" : "slave",
    reason: o.reason,
  };
}

/** When a promotion was first sent, and in place of which process (kept in memory). */
export interface PromotionStart {
  at: number;
  oldMaster?: string;
}

/**
 * The old master and the duration of the promotion that completes at `now`:
 * from the loss of the master recorded in the history since the last
 * promotion (so it holds across a scheduler restart), else from `started`
 * (when the promote was sent); neither: no duration.
 */
export function failoverOf(
  history: EventHistory,
  name: string,
  started: PromotionStart | undefined,
  now: number,
): { oldMaster?: string; durationMs?: number } {
  const loss = history.last(
    name,
    (e) => e.kind === "promoted" || (e.kind === "lost" && e.role === "master"),
  );
  const oldMaster = started?.oldMaster ?? (loss?.kind === "lost" ? loss.procId : undefined);
  const from = loss?.kind === "lost" ? loss.at : started?.at;
  return {
    ...(oldMaster !== undefined ? { oldMaster } : {}),
    ...(from !== undefined ? { durationMs: Math.max(0, now - from) } : {}),
  };
}

/** `promoted`: a slave became the master (`durationMs` from the old master's loss). */
export function promotedEvent(
  o: { newMaster: string; oldMaster?: string; durationMs?: number; epoch: number },
): NewEvent {
  return {
    kind: "promoted",
    message: `${o.newMaster} promoted to master${o.oldMaster ? ` in place of ${o.oldMaster}` : ""}${
      o.durationMs !== undefined ? ` in ${seconds(o.durationMs)}` : ""
    } (epoch ${o.epoch})`,
    procId: o.newMaster,
    newMaster: o.newMaster,
    ...(o.oldMaster ? { oldMaster: o.oldMaster } : {}),
    ...(o.durationMs !== undefined ? { durationMs: o.durationMs } : {}),
    epoch: o.epoch,
  };
}

/** `fenced`: a process was told to stop taking writes and killed. */
export function fencedEvent(o: { procId: string; taskId: string; reason: string }): NewEvent {
  return {
    kind: "fenced",
    message: `${o.procId} fenced: ${o.reason}`,
    procId: o.procId,
    taskId: o.taskId,
    reason: o.reason,
  };
}

/** `resized`: the capacity of every process changed, MB. */
export function resizedEvent(o: { fromMB: number; toMB: number; detail?: string }): NewEvent {
  return {
    kind: "resized",
    message: `Resized from ${o.fromMB} MB to ${o.toMB} MB${o.detail ? `: ${o.detail}` : ""}`,
    from: o.fromMB,
    to: o.toMB,
  };
}

/** `scaled`: the number of slaves changed. */
export function scaledEvent(
  o: { fromSlaves: number; toSlaves: number; detail?: string },
): NewEvent {
  return {
    kind: "scaled",
    message: `Scaled from ${o.fromSlaves} to ${o.toSlaves} slave(s)${
      o.detail ? `: ${o.detail}` : ""
    }`,
    from: o.fromSlaves,
    to: o.toSlaves,
  };
}

/** `deleted`: every process is gone and the instance's keys removed. */
export function deletedEvent(): NewEvent {
  return { kind: "deleted", message: "Deleted: every process stopped and its data removed" };
}

/** The JSON form served by `GET /v1/EVENTS/{name}` (field names as STATUS has them). */
export function eventView(e: InstanceEvent): Record<string, unknown> {
  return dropUndefined({
    Seq: e.seq,
    Time: new Date(e.at).toISOString(),
    Kind: e.kind,
    Message: e.message,
    Process: e.procId,
    TaskId: e.taskId,
    Address: e.address,
    AgentId: e.agentId,
    Role: e.role,
    Reason: e.reason,
    OldMaster: e.oldMaster,
    NewMaster: e.newMaster,
    DurationSeconds: e.durationMs !== undefined ? e.durationMs / 1000 : undefined,
    Epoch: e.epoch,
    From: e.from,
    To: e.to,
  });
}
