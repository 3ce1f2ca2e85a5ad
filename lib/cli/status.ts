/**
 * `mrr status`: one instance in the original text format, or a table of all.
 *
 * @module
 */

import { notFound, SchedulerClient } from "./client.ts";
import { type Command, usageHint } from "./command.ts";
import { NAME_FLAG, noPositionals, requireName } from "./common_flags.ts";
import { type Context, println } from "./context.ts";
import { booleanFlag, parseFlags } from "./flags.ts";
import { formatStatus, formatTable, NO_ADDRESS } from "./format.ts";
import { resolveEndpoint, resolveToken } from "./user_config.ts";

const HINT = usageHint("status");

/** The `status` command. */
export const statusCommand: Command = {
  name: "status",
  aliases: ["s"],
  summary: "Show one Redis instance, or list them all",
  usage: "status [-n NAME] [--json]",
  flags: [
    { ...NAME_FLAG, description: "the instance to show; without it, every instance as a table" },
    { name: "json", type: "boolean", description: "print the scheduler's STATUS JSON" },
  ],
  notes: [
    "One instance prints as key = value lines: Status, Type, Capacity (MB), Master,",
    "then one tab-indented SlaveN line per slave, and Reason when the scheduler gives one.",
    `An address not known yet (no master elected, slave starting) prints as "${NO_ADDRESS}".`,
  ],
  examples: ["mrr status -n cache1", "mrr status", "mrr status -n cache1 --json"],
  async run(args: string[], ctx: Context): Promise<number> {
    const parsed = parseFlags(args, this.flags, HINT);
    noPositionals(parsed, HINT);
    const name = parsed.flags.has("name") ? requireName(parsed, HINT) : undefined;
    const json = booleanFlag(parsed, "json");

    const client = new SchedulerClient(await resolveEndpoint(ctx.env), {
      token: await resolveToken(ctx.env),
    });
    if (name !== undefined) {
      const instance = await client.status(name);
      if (!instance) throw notFound(name);
      println(ctx.stdout, json ? JSON.stringify(instance, null, 2) : formatStatus(instance));
      return 0;
    }
    const instances = await client.list();
    if (json) {
      println(ctx.stdout, JSON.stringify(instances, null, 2));
    } else if (instances.length === 0) {
      println(ctx.stderr, 'No instances; create one with "mrr create -n NAME -m MB"');
    } else {
      println(ctx.stdout, formatTable(instances));
    }
    return 0;
  },
};
