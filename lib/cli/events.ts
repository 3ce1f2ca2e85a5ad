/**
 * `mrr events`: the event history of an instance (`GET /v1/EVENTS/{name}`),
 * one line per event, oldest first.
 *
 * @module
 */

import { type EventEntry, SchedulerClient } from "./client.ts";
import { type Command, usageHint } from "./command.ts";
import { NAME_FLAG, noPositionals, requireName } from "./common_flags.ts";
import { type Context, println } from "./context.ts";
import { booleanFlag, parseFlags } from "./flags.ts";
import { resolveEndpoint, resolveToken } from "./user_config.ts";

const HINT = usageHint("events");

/** One event as a line: time, kind, sentence. */
export function formatEvent(e: EventEntry): string {
  return `${e.Time}  ${e.Kind.padEnd(8)}  ${e.Message}`;
}

/** The `events` command. */
export const eventsCommand: Command = {
  name: "events",
  aliases: ["ev"],
  summary: "Print the event history of a Redis instance",
  usage: "events -n NAME [--json]",
  flags: [
    NAME_FLAG,
    { name: "json", type: "boolean", description: "print the scheduler's JSON" },
  ],
  notes: [
    "The last 100 events, oldest first: created, launched, running, lost (with why),",
    "promoted (old and new master, duration), fenced, resized, scaled, deleted.",
    "A deleted instance's history is kept for a day.",
  ],
  examples: ["mrr events -n cache1", "mrr events -n cache1 --json"],
  async run(args: string[], ctx: Context): Promise<number> {
    const parsed = parseFlags(args, this.flags, HINT);
    noPositionals(parsed, HINT);
    const name = requireName(parsed, HINT);
    const client = new SchedulerClient(await resolveEndpoint(ctx.env), {
      token: await resolveToken(ctx.env),
    });
    const events = await client.events(name);
    if (booleanFlag(parsed, "json")) {
      println(ctx.stdout, JSON.stringify(events, null, 2));
      return 0;
    }
    for (const e of events) println(ctx.stdout, formatEvent(e));
    return 0;
  },
};
