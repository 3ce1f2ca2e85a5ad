/**
 * `mrr credentials`: the password clients use for an instance
 * (`GET /v1/CREDENTIALS/{name}`).
 *
 * @module
 */

import { SchedulerClient } from "./client.ts";
import { type Command, usageHint } from "./command.ts";
import { NAME_FLAG, noPositionals, requireName } from "./common_flags.ts";
import { type Context, println } from "./context.ts";
import { CommandError } from "./errors.ts";
import { booleanFlag, parseFlags } from "./flags.ts";
import { resolveEndpoint, resolveToken } from "./user_config.ts";

const HINT = usageHint("credentials");

/** The `credentials` command. */
export const credentialsCommand: Command = {
  name: "credentials",
  aliases: ["cred"],
  summary: "Print the password of a Redis instance",
  usage: "credentials -n NAME [--json]",
  flags: [
    NAME_FLAG,
    {
      name: "json",
      type: "boolean",
      description: "print the scheduler's JSON (Name, User, Password)",
    },
  ],
  notes: [
    "Prints the password alone on one line, for scripts:",
    '  redis-cli -h HOST -p PORT --pass "$(mrr credentials -n cache1)"',
    "Instances created before passwords have none; they say so and exit 1.",
  ],
  examples: ["mrr credentials -n cache1", "mrr credentials -n cache1 --json"],
  async run(args: string[], ctx: Context): Promise<number> {
    const parsed = parseFlags(args, this.flags, HINT);
    noPositionals(parsed, HINT);
    const name = requireName(parsed, HINT);
    const json = booleanFlag(parsed, "json");
    const client = new SchedulerClient(await resolveEndpoint(ctx.env), {
      token: await resolveToken(ctx.env),
    });
    const found = await client.credentials(name);
    if (json) {
      println(ctx.stdout, JSON.stringify(found, null, 2));
      return 0;
    }
    if (found.Password === null) {
      throw new CommandError(
        `instance "${name}" has no password (it was created before passwords)`,
      );
    }
    println(ctx.stdout, found.Password);
    return 0;
  },
};
