/**
 * `mrr update`: change a Redis instance's memory, slave count or
 * Distribution while it serves, optionally wait until the change is over.
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
import { UsageError } from "./errors.ts";
import { booleanFlag, parseFlags, parseWholeNumber, stringFlag } from "./flags.ts";
import { address } from "./format.ts";
import { resolveEndpoint, resolveToken } from "./user_config.ts";
import { waitForInstance } from "./wait.ts";

const HINT = usageHint("update");

/** The `update` command. */
export const updateCommand: Command = {
  name: "update",
  aliases: ["u"],
  summary: "Change an instance's memory, slaves, Distribution or proxies",
  usage: "update -n NAME [-m MB] [-s SLAVES] [-d N] [-p N] [-w] [--timeout DUR]",
  flags: [
    NAME_FLAG,
    {
      name: "memory",
      short: "m",
      type: "string",
      placeholder: "MB",
      description: "new memory of each redis process in MB (a rolling replacement)",
    },
    {
      name: "slaves",
      short: "s",
      type: "string",
      placeholder: "SLAVES",
      description: "new number of slaves (0 makes a single server)",
    },
    {
      name: "distribution",
      short: "d",
      type: "string",
      placeholder: "N",
      description: "new Distribution: the most processes of the instance on one agent",
    },
    {
      name: "proxies",
      short: "p",
      type: "string",
      placeholder: "N",
      description: "new number of proxy endpoints (0 to 16; changes no redis process)",
    },
    { ...WAIT_FLAG, description: "wait until the change is over, showing its progress" },
    TIMEOUT_FLAG,
  ],
  notes: [
    "Give at least one of -m, -s, -d, -p. Without -w the command returns once the scheduler accepts the change.",
    "A new memory size, or a change between a single server and master-slave, replaces every process one at a time with one promotion; more or fewer slaves only add or remove slaves.",
    'One change runs at a time per instance; "mrr status -n NAME" shows it under Update.',
  ],
  examples: [
    "mrr update -n cache1 -s 3 -w",
    "mrr update -n cache1 -m 500 -w --timeout 10m",
  ],
  async run(args: string[], ctx: Context): Promise<number> {
    const parsed = parseFlags(args, this.flags, HINT);
    noPositionals(parsed, HINT);
    const name = requireName(parsed, HINT);
    const memory = stringFlag(parsed, "memory");
    const slaves = stringFlag(parsed, "slaves");
    const distribution = stringFlag(parsed, "distribution");
    const proxies = stringFlag(parsed, "proxies");
    const body: Record<string, number> = {};
    if (memory) {
      body.Capacity = parseWholeNumber(memory, 1, "a whole number of MB greater than 0", HINT);
    }
    if (slaves) {
      body.Slaves = parseWholeNumber(slaves, 0, "a whole number of slaves, 0 or more", HINT);
    }
    if (distribution) {
      body.Distribution = parseWholeNumber(
        distribution,
        1,
        "a whole number of processes per agent, 1 or more",
        HINT,
      );
    }
    if (proxies) {
      body.Proxies = parseWholeNumber(proxies, 0, "a whole number of proxies, 0 or more", HINT);
    }
    if (Object.keys(body).length === 0) {
      throw new UsageError(
        'Nothing to change: give at least one of "-m MB", "-s SLAVES", "-d N" or "-p N"',
        HINT,
      );
    }
    const wait = booleanFlag(parsed, "wait");
    const timeoutMs = waitTimeout(parsed, HINT);

    const client = new SchedulerClient(await resolveEndpoint(ctx.env), {
      token: await resolveToken(ctx.env),
    });
    const what = [
      body.Capacity !== undefined ? `${body.Capacity} MB per process` : "",
      body.Slaves !== undefined ? `${body.Slaves} slave${body.Slaves === 1 ? "" : "s"}` : "",
      body.Distribution !== undefined ? `Distribution ${body.Distribution}` : "",
      body.Proxies !== undefined ? `${body.Proxies} prox${body.Proxies === 1 ? "y" : "ies"}` : "",
    ].filter((s) => s).join(", ");
    println(ctx.stdout, `Updating instance "${name}": ${what}`);
    const answer = await client.update(name, JSON.stringify(body));
    if (answer.status === 200) {
      println(ctx.stdout, answer.text);
      return 0;
    }
    println(ctx.stdout, "Request accepted by the scheduler");
    if (!wait) {
      println(ctx.stdout, `Run "mrr status -n ${name}" to follow it`);
      return 0;
    }
    const instance = await waitForInstance({
      client,
      name,
      until: "updated",
      timeoutMs,
      out: ctx.stdout,
    });
    const slaveCount = instance?.Slaves?.length ?? 0;
    println(
      ctx.stdout,
      `Instance "${name}" is updated and RUNNING: ${instance?.Capacity} MB, ${slaveCount} slave${
        slaveCount === 1 ? "" : "s"
      }, master at ${address(instance!.Master)}`,
    );
    return 0;
  },
};
