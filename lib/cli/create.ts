/**
 * `mrr create`: ask the scheduler for a new Redis instance, optionally wait
 * until it runs.
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
import { address, countProcesses } from "./format.ts";
import { resolveEndpoint, resolveToken } from "./user_config.ts";
import { waitForInstance } from "./wait.ts";

const HINT = usageHint("create");

/** Reads and checks the `-f` file; returns its text, to be sent as the request body. */
async function readBodyFile(spelled: string, path: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound
      ? "no such file"
      : error instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : (error as Error).message;
    throw new UsageError(`Cannot read the file "${path}" given with "${spelled}": ${why}`, HINT, {
      cause: error,
    });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new UsageError(
      `The file "${path}" given with "${spelled}" is not valid JSON: ${(error as Error).message}`,
      `${HINT}; the file looks like {"Distribution": 2}`,
      { cause: error },
    );
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new UsageError(
      `The file "${path}" given with "${spelled}" must hold a JSON object such as {"Distribution": 2}`,
      HINT,
    );
  }
  return text;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** The `create` command. */
export const createCommand: Command = {
  name: "create",
  aliases: ["c"],
  summary: "Create a Redis instance",
  usage: "create -n NAME -m MB [-M MASTERS] [-s SLAVES] [-w] [-f FILE] [--timeout DUR]",
  flags: [
    NAME_FLAG,
    {
      name: "memory",
      short: "m",
      type: "string",
      placeholder: "MB",
      description: "memory of each redis process in MB (required)",
    },
    {
      name: "masters",
      short: "M",
      type: "string",
      placeholder: "MASTERS",
      description:
        "number of masters; more than 1 makes a Redis Cluster of that many shards (default 1)",
    },
    {
      name: "slaves",
      short: "s",
      type: "string",
      placeholder: "SLAVES",
      description: "number of slaves (of each shard with -M); 0 makes a single server (default 0)",
    },
    { ...WAIT_FLAG, description: "wait until the instance is RUNNING, showing progress" },
    {
      name: "file",
      short: "f",
      type: "string",
      placeholder: "FILE",
      description: 'JSON file sent with the request, e.g. {"Distribution": 2}',
    },
    TIMEOUT_FLAG,
  ],
  notes: [
    "Without -w the command returns once the scheduler accepts the request.",
    "Distribution is the most redis processes of the instance on one agent (default 1).",
    "A Redis Cluster (-M 3 -s 1: 3 shards of a master and a replica) has masters × (1 + slaves) processes.",
  ],
  examples: [
    "mrr create -n cache1 -m 200",
    "mrr create -n sessions -m 100 -s 2 -w --timeout 3m",
    "mrr create -n big -m 100 -s 5 -f d.json",
    "mrr create -n shop -m 100 -M 3 -s 1 -f d.json -w",
  ],
  async run(args: string[], ctx: Context): Promise<number> {
    const parsed = parseFlags(args, this.flags, HINT);
    noPositionals(parsed, HINT);
    const name = requireName(parsed, HINT);
    const memory = stringFlag(parsed, "memory");
    if (!memory) {
      throw new UsageError('Option "-m" is required: the memory of each redis process in MB', HINT);
    }
    const capacity = parseWholeNumber(memory, 1, "a whole number of MB greater than 0", HINT);
    const mastersFlag = stringFlag(parsed, "masters");
    const masters = mastersFlag
      ? parseWholeNumber(mastersFlag, 1, "a whole number of masters, 1 or more", HINT)
      : 1;
    const slavesFlag = stringFlag(parsed, "slaves");
    const slaves = slavesFlag
      ? parseWholeNumber(slavesFlag, 0, "a whole number of slaves, 0 or more", HINT)
      : 0;
    const file = stringFlag(parsed, "file");
    const body = file ? await readBodyFile(file.spelled, file.value) : undefined;
    const wait = booleanFlag(parsed, "wait");
    const timeoutMs = waitTimeout(parsed, HINT);

    const client = new SchedulerClient(await resolveEndpoint(ctx.env), {
      token: await resolveToken(ctx.env),
    });
    const shape = masters > 1
      ? `a Redis Cluster of ${masters} masters with ${
        plural(slaves, "replica")
      } each, ${capacity} MB per process`
      : slaves === 0
      ? `a single server of ${capacity} MB`
      : `1 master and ${plural(slaves, "slave")} of ${capacity} MB each`;
    println(ctx.stdout, `Creating instance "${name}": ${shape}`);
    await client.create(name, capacity, masters, slaves, body);
    println(ctx.stdout, "Request accepted by the scheduler");
    if (!wait) {
      println(ctx.stdout, `Run "mrr status -n ${name}" to follow it`);
      return 0;
    }
    const instance = await waitForInstance({
      client,
      name,
      until: "running",
      timeoutMs,
      out: ctx.stdout,
      expectedSlaves: masters * (1 + slaves) - 1,
    });
    const count = countProcesses(instance!, masters * (1 + slaves) - 1);
    const shards = Array.isArray(instance!.Shards) ? instance!.Shards : undefined;
    println(
      ctx.stdout,
      `Instance "${name}" is RUNNING (${count.running} of ${count.total} processes), ${
        shards
          ? `shard masters at ${shards.map((s) => address(s.Master)).join(", ")}`
          : `master at ${address(instance!.Master)}`
      }`,
    );
    return 0;
  },
};
