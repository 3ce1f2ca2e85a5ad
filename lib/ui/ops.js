/**
 * The web UI's operations views, pure and DOM-free until `buildTimeline`:
 * the health banner (from `GET /v1/HEALTH`) and the event timeline of an
 * instance (from `GET /v1/EVENTS/{name}`). Text reaches the DOM through
 * `textContent` alone.
 *
 * @module
 */
import { el } from "./view.js";

/**
 * The answer of `GET /v1/HEALTH`.
 * @typedef {{ Status: string, Role: string, Mesos: string, Store: string }} HealthJson
 */

/**
 * One event of `GET /v1/EVENTS/{name}`.
 * @typedef {{ Seq: number, Time: string, Kind: string, Message: string, [field: string]: unknown }} EventJson
 */

/**
 * The banner line for a HEALTH answer: why the scheduler cannot act (Mesos
 * or the store unreachable, or it stands by), or `null` when all is well.
 * @param {HealthJson | null | undefined} health
 * @returns {string | null}
 */
export function healthBanner(health) {
  if (!health || typeof health.Status !== "string") return null;
  if (health.Status === "OK") return null;
  /** @type {string[]} */
  const parts = [];
  if (typeof health.Store === "string" && health.Store !== "reachable") {
    parts.push(`the state store is ${health.Store}`);
  }
  if (health.Role === "leader" && health.Mesos !== "subscribed") {
    parts.push(`the Mesos master is not connected (${health.Mesos})`);
  }
  if (health.Role !== "leader") {
    parts.push(`this scheduler is not leading (${health.Role})`);
  }
  if (parts.length === 0) parts.push("it reports UNAVAILABLE");
  return `The scheduler cannot create or heal instances now: ${
    parts.join("; ")
  }. Instances keep running.`;
}

/** The badge colour of each event kind (the status classes of the list). */
const KIND_CLASS = {
  created: "st-running",
  running: "st-running",
  launched: "st-other",
  scaled: "st-other",
  resized: "st-other",
  promoted: "st-amber",
  fenced: "st-amber",
  lost: "st-degraded",
  deleted: "st-deleting",
};

/**
 * The timeline entries of an event list, newest first.
 * @param {readonly EventJson[]} events
 * @returns {{ time: string, kind: string, message: string, cls: string }[]}
 */
export function timelineEntries(events) {
  return [...events].reverse().map((e) => ({
    time: typeof e.Time === "string" ? e.Time.replace("T", " ").replace(/\.\d+Z$/, "Z") : "",
    kind: String(e.Kind),
    message: String(e.Message ?? ""),
    cls: /** @type {Record<string, string>} */ (KIND_CLASS)[String(e.Kind)] ?? "st-other",
  }));
}

/**
 * Builds the timeline list (`<li>` per event, newest first) of `name`.
 * @param {Document} doc
 * @param {string} name
 * @param {readonly EventJson[]} events
 * @returns {DocumentFragment}
 */
export function buildTimeline(doc, name, events) {
  const frag = doc.createDocumentFragment();
  const entries = timelineEntries(events);
  if (entries.length === 0) {
    frag.append(el(doc, "li", "muted", `No events for ${name} yet.`));
    return frag;
  }
  for (const e of entries) {
    const li = el(doc, "li", `event ev-${e.kind}`);
    li.append(
      el(doc, "time", "mono", e.time),
      el(doc, "span", `badge ${e.cls}`, e.kind),
      el(doc, "span", "", e.message),
    );
    frag.append(li);
  }
  return frag;
}
