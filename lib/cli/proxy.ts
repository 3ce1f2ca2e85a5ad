/**
 * `mrr proxy`: a local proxy for applications outside the cluster. It listens
 * on a local address and follows the instance's master through the
 * scheduler with a long poll of STATUS, with the semantics of the in-cluster
 * proxy (lib/proxy).
 *
 * @module
 */

import { ProxyGroup } from "../proxy/proxy_group.ts";
import { masterOf, masterVersion } from "../proxy/master_version.ts";
import { describeAnswer, SchedulerClient } from "./client.ts";
import { type Command, usageHint } from "./command.ts";
import { NAME_FLAG, noPositionals, requireName } from "./common_flags.ts";
import { type Context, println } from "./context.ts";
import { CommandError, UsageError } from "./errors.ts";
import { parseDurationFlag, parseFlags, parseWholeNumber, stringFlag } from "./flags.ts";
import { resolveEndpoint, resolveToken } from "./user_config.ts";

const HINT = usageHint("proxy");

/** How long one long poll of STATUS waits on the scheduler. */
const POLL_WAIT_S = 25;

/** Parses `HOST:PORT` (IPv6 in brackets); throws a usage error naming `spelled`. */
export function parseHostPort(text: string, spelled: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port > 0 && port <= 65535)) {
    throw new UsageError(
      `Option "${spelled}" must be HOST:PORT such as 127.0.0.1:6380, but got "${text}"`,
      HINT,
    );
  }
  return { host: (m[1] ?? m[2])!, port };
}

/** Resolves when SIGINT or SIGTERM arrives. */
function stopSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
      resolve();
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  });
}

/** The `proxy` command. */
export const proxyCommand: Command = {
  name: "proxy",
  aliases: ["p"],
  summary: "Listen locally and proxy to an instance's master, following failovers",
  usage: "proxy -n NAME [-l 127.0.0.1:6380] [--wait DUR]",
  flags: [
    NAME_FLAG,
    {
      name: "listen",
      short: "l",
      type: "string",
      placeholder: "HOST:PORT",
      description: "where to listen (default 127.0.0.1:6380)",
    },
    {
      name: "wait",
      type: "string",
      placeholder: "DUR",
      description: "how long a connection waits for a master before an -ERR line (default 2s)",
    },
    {
      name: "threads",
      type: "string",
      placeholder: "N",
      description:
        "threads serving connections, 1 to 64 (default 1; more need deno --unstable-net)",
    },
    {
      name: "master",
      type: "string",
      placeholder: "HOST:PORT",
      description: "proxy to this fixed master instead of following an instance (no scheduler)",
    },
  ],
  notes: [
    "Connections are served by the instance's current master. When the scheduler promotes",
    "another process, connections to the old master are closed (clients reconnect) and new",
    "ones go to the new master. The proxy follows the scheduler with a long poll of STATUS;",
    "while the scheduler cannot be reached it keeps the last master it knew. A connection",
    "arriving while there is no usable master waits, then gets an -ERR line.",
    "An instance with a password (every instance made by a scheduler with passwords) needs",
    'it at the proxy too: clients AUTH with the password of "mrr credentials -n NAME".',
    "Stop it with Ctrl-C (SIGINT) or SIGTERM.",
  ],
  examples: ["mrr proxy -n cache1", "mrr proxy -n cache1 -l 0.0.0.0:7000 --wait 5s"],
  async run(args: string[], ctx: Context): Promise<number> {
    const parsed = parseFlags(args, this.flags, HINT);
    noPositionals(parsed, HINT);
    const fixed = stringFlag(parsed, "master");
    const name = fixed && !parsed.flags.has("name") ? undefined : requireName(parsed, HINT);
    const listenFlag = stringFlag(parsed, "listen");
    const listen = listenFlag
      ? parseHostPort(listenFlag.value, listenFlag.spelled)
      : { host: "127.0.0.1", port: 6380 };
    const waitFlag = stringFlag(parsed, "wait");
    const waitMs = waitFlag ? parseDurationFlag(waitFlag, HINT) : 2000;
    const master = fixed ? parseHostPort(fixed.value, fixed.spelled) : undefined;
    const threadsFlag = stringFlag(parsed, "threads");
    const threads = threadsFlag
      ? parseWholeNumber(threadsFlag, 1, "a whole number from 1 to 64", HINT)
      : 1;
    if (threads > 64) {
      throw new UsageError(
        `Option "${threadsFlag!.spelled}" must be a whole number from 1 to 64, but got "${
          threadsFlag!.value
        }"`,
        HINT,
      );
    }
    if (master && name !== undefined) {
      throw new UsageError('Options "-n" and "--master" cannot be used together', HINT);
    }

    let client: SchedulerClient | undefined;
    let first: Record<string, unknown> | undefined;
    let password: string | undefined;
    if (name !== undefined) {
      client = new SchedulerClient(await resolveEndpoint(ctx.env), {
        token: await resolveToken(ctx.env),
      });
      const status = await client.status(name);
      if (!status) throw new CommandError(`instance "${name}" does not exist (404)`);
      if (status.Type === "RC") {
        // One address cannot stand for a cluster's shards: clients talk to the nodes.
        throw new CommandError(
          `instance "${name}" is a Redis Cluster: connect a cluster-aware client (redis-cli -c, ioredis Cluster) to its nodes (mrr status -n ${name})`,
        );
      }
      first = status;
      password = await instancePassword(client, name);
    }

    let proxy: ProxyGroup;
    try {
      proxy = await ProxyGroup.start({
        hostname: listen.host,
        port: listen.port,
        name: name ?? `${master!.host}:${master!.port}`,
        waitMs,
        threads,
        ...(password !== undefined ? { password } : {}),
        log: (line) => println(ctx.stderr, line),
      });
    } catch (error) {
      throw new CommandError(
        `cannot listen on ${listen.host}:${listen.port}: ${(error as Error).message}`,
      );
    }
    const stop = stopSignal();
    try {
      if (master) {
        proxy.setMaster(master);
        println(
          ctx.stdout,
          `Proxy listening on ${listen.host}:${proxy.addr.port}, master ${master.host}:${master.port}`,
        );
        await stop;
        return 0;
      }
      const initial = masterOf(first!);
      proxy.setMaster(initial);
      println(
        ctx.stdout,
        `Proxy for instance "${name}" listening on ${listen.host}:${proxy.addr.port}, master ${
          initial ? `${initial.host}:${initial.port}` : "none yet"
        }`,
      );
      const stopped = stop.then(() => "stopped" as const);
      const result = await Promise.race([
        follow(client!, name!, masterVersion(first!), proxy, ctx),
        stopped,
      ]);
      if (result === "stopped") return 0;
      throw result;
    } finally {
      await proxy.close();
    }
  },
};

/**
 * The instance's password (clients then AUTH to the proxy with it), or
 * `undefined` for an instance without one or a scheduler older than
 * passwords (no CREDENTIALS route).
 */
async function instancePassword(
  client: SchedulerClient,
  name: string,
): Promise<string | undefined> {
  try {
    return (await client.credentials(name)).Password ?? undefined;
  } catch (error) {
    if (error instanceof CommandError && (error.status === 404 || error.status === 405)) {
      return undefined;
    }
    throw error;
  }
}

/**
 * Follows the instance until it is deleted (resolves with the error to
 * report). Scheduler failures keep the last master and retry.
 */
async function follow(
  client: SchedulerClient,
  name: string,
  version: string,
  proxy: ProxyGroup,
  ctx: Context,
): Promise<CommandError> {
  const poller = client.withTimeout((POLL_WAIT_S + 15) * 1000);
  let unreachableSince = 0;
  while (true) {
    const started = Date.now();
    let answer;
    try {
      answer = await poller.statusWait(name, version, POLL_WAIT_S);
    } catch (error) {
      if (!unreachableSince) {
        unreachableSince = Date.now();
        println(
          ctx.stderr,
          `Proxy ${name}: ${(error as Error).message}; keeping master ${
            proxy.master ? `${proxy.master.host}:${proxy.master.port}` : "none"
          }`,
        );
      }
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    if (unreachableSince) {
      println(ctx.stderr, `Proxy ${name}: the scheduler answers again`);
      unreachableSince = 0;
    }
    if (answer.status === 404) {
      return new CommandError(`instance "${name}" was deleted`);
    }
    if (answer.status !== 200 || answer.json === undefined) {
      println(ctx.stderr, `Proxy ${name}: ${describeAnswer(answer)}`);
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    const status = answer.json as Record<string, unknown>;
    const next = masterVersion(status);
    if (next !== version) {
      version = next;
      const m = masterOf(status);
      if (m) println(ctx.stderr, `Proxy ${name}: master is ${m.host}:${m.port} (epoch ${m.epoch})`);
      proxy.setMaster(m);
    } else if (Date.now() - started < 1000) {
      // A scheduler without long polls answers at once: poll once a second.
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
