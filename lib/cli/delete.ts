/**
 * `mrr delete`: delete a Redis instance, optionally wait until it is gone.
 *
 * @module
 */

import { SchedulerClient } from "./client.ts";
import { type Command, usageHint } from "./command.ts";
import {
  NAME_FLAG,
  noPositionals,
  requireName,
  TIMEOUT_FLAG,
  WAIT_FLAG,
  waitTimeout,
} from "./common_flags.ts";
import { type Context, println } from "./context.ts";
import { booleanFlag, parseFlags } from "./flags.ts";
import { resolveEndpoint, resolveToken } from "./user_config.ts";
import { waitForInstance } from "./wait.ts";

const HINT = usageHint("delete");

/** The `delete` command. */
export const deleteCommand: Command = {
  name: "delete",
  aliases: ["d"],
  summary: "Delete a Redis instance",
  usage: "delete -n NAME [-w] [--timeout DUR]",
  flags: [
    NAME_FLAG,
    { ...WAIT_FLAG, description: "wait until the scheduler no longer knows the instance" },
    TIMEOUT_FLAG,
  ],
  notes: ["Deleting stops every redis process of the instance; its data is lost."],
  examples: ["mrr delete -n cache1", "mrr delete -n cache1 -w --timeout 30s"],
  async run(args: string[], ctx: Context): Promise<number> {
    const parsed = parseFlags(args, this.flags, HINT);
    noPositionals(parsed, HINT);
    const name = requireName(parsed, HINT);
    const wait = booleanFlag(parsed, "wait");
    const timeoutMs = waitTimeout(parsed, HINT);

    const client = new SchedulerClient(await resolveEndpoint(ctx.env), {
      token: await resolveToken(ctx.env),
    });
    await client.delete(name);
    if (!wait) {
      println(ctx.stdout, `Deletion of instance "${name}" accepted`);
      return 0;
    }
    println(ctx.stdout, `Deleting instance "${name}"`);
    await waitForInstance({ client, name, until: "gone", timeoutMs, out: ctx.stdout });
    println(ctx.stdout, `Instance "${name}" deleted`);
    return 0;
  },
};
