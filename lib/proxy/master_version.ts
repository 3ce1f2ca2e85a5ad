/**
 * What a proxy follows in an instance's STATUS: the master address and the
 * failover epoch, summed up as one version string for long polls.
 *
 * @module
 */
import type { MasterAddress } from "./proxy.ts";

/** The fields of a STATUS answer a proxy reads. */
export interface MasterFields {
  Master?: { IP?: unknown; Port?: unknown } | null;
  Epoch?: unknown;
}

/** The master named by a STATUS answer, or null when it names none yet. */
export function masterOf(status: MasterFields): MasterAddress | null {
  const ip = status.Master?.IP;
  const port = Number(status.Master?.Port);
  if (typeof ip !== "string" || ip === "" || !Number.isInteger(port) || port <= 0) return null;
  const epoch = Number(status.Epoch);
  return { host: ip, port, ...(Number.isInteger(epoch) ? { epoch } : {}) };
}

/**
 * A string that changes whenever the master or the epoch of a STATUS answer
 * changes, e.g. `3-10.0.0.5:31002` or `0-none`.
 */
export function masterVersion(status: MasterFields): string {
  const m = masterOf(status);
  const epoch = Number.isInteger(Number(status.Epoch)) ? Number(status.Epoch) : 0;
  return `${epoch}-${m ? `${m.host}:${m.port}` : "none"}`;
}
