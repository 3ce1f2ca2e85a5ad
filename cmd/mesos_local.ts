/**
 * `mesos-local`: runs a local Mesos-compatible master with N agents in its
 * own process and prints the master URL once it is ready.
 *
 * Usage: `deno run -A cmd/mesos_local.ts --agents N --port P [--work-dir DIR] [--cpus C] [--mem MB]
 * [--ports-base P] [--ports-per-agent N]
 * [--leader HOST:PORT | --zk zk://HOST:PORT/PATH]`: `--leader` runs a non-leading master that
 * redirects schedulers there; `--zk` joins a ZooKeeper masters' group (smallest node leads).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startLocalCluster } from "../lib/mesos/local/mod.ts";
import { runCommandExecutor } from "../lib/mesos/local/command_executor.ts";
import { type Credential, parseCredentials } from "../lib/mesos/local/auth.ts";

const USAGE =
  "Usage: mesos_local [--agents N] [--port P] [--work-dir DIR] [--cpus C] [--mem MB] [--ports-base P] [--ports-per-agent N] [--leader HOST:PORT | --zk zk://HOST:PORT/PATH] [--credentials FILE] [--verbose]";

const HELP = `${USAGE}

Runs a local Mesos-compatible master with N agents and prints the master URL once it is ready.
  --agents N            agents to run (default 3)
  --port P              master port (default 0: any free port)
  --work-dir DIR        sandboxes (default a temp dir, removed at exit)
  --cpus C, --mem MB    resources of each agent (default 4 cpus, 4096 MB)
  --ports-base P        first port of agent 0's ports range (default 31000)
  --ports-per-agent N   size of each agent's ports range (default 1000)
  --leader HOST:PORT    run a non-leading master that redirects schedulers there
  --zk zk://HOST:PORT/PATH  join a ZooKeeper masters' group (smallest node leads)
  --credentials FILE    authenticate frameworks (HTTP Basic) with the credentials in FILE
                        (JSON {"credentials": [{"principal", "secret"}]} or "principal secret"
                        lines), and executors with a token each (401 otherwise, as Mesos)
  --verbose             log to stderr
  -h, --help            print this help`;

function number(
  flag: string,
  raw: string | undefined,
  fallback: number,
  whole: boolean,
  min: number,
): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n) || n < min || (whole && !Number.isInteger(n))) {
    throw new RangeError(
      `Option "--${flag}" must be ${
        whole ? "a whole number" : "a number"
      } of at least ${min}, but got "${raw}"`,
    );
  }
  return n;
}

async function readCredentials(path: string): Promise<Credential[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound ? "no such file" : (error as Error).message;
    throw new TypeError(`Option "--credentials": cannot read "${path}": ${why}`);
  }
  return parseCredentials(text, `Option "--credentials" file "${path}"`);
}

/** Runs the local cluster until SIGINT/SIGTERM; returns the exit code (2 for bad flags). */
export async function main(args: string[]): Promise<number> {
  // The agents start this program as the command executor of command tasks.
  if (args.length === 1 && args[0] === "--command-executor") return await runCommandExecutor();
  let options;
  try {
    const { values } = parseArgs({
      args,
      options: {
        agents: { type: "string" },
        port: { type: "string" },
        "work-dir": { type: "string" },
        cpus: { type: "string" },
        mem: { type: "string" },
        "ports-base": { type: "string" },
        "ports-per-agent": { type: "string" },
        leader: { type: "string" },
        zk: { type: "string" },
        credentials: { type: "string" },
        verbose: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      console.log(HELP);
      return 0;
    }
    options = {
      agents: number("agents", values.agents, 3, true, 1),
      port: number("port", values.port, 0, true, 0),
      cpus: number("cpus", values.cpus, 4, false, 0.01),
      mem: number("mem", values.mem, 4096, true, 32),
      portsBase: number("ports-base", values["ports-base"], 31000, true, 1),
      portsPerAgent: number("ports-per-agent", values["ports-per-agent"], 1000, true, 1),
      workDir: values["work-dir"],
      verbose: values.verbose === true,
      leader: values.leader,
      zk: values.zk,
      credentials: values.credentials === undefined
        ? undefined
        : await readCredentials(values.credentials),
    };
    if (options.leader !== undefined && !/^[^\s/:]+:\d+$/.test(options.leader)) {
      throw new TypeError(`Option "--leader" must be HOST:PORT, but got "${options.leader}"`);
    }
    if (options.zk !== undefined && !/^zk:\/\/[^/\s]+\/\S+$/.test(options.zk)) {
      throw new TypeError(`Option "--zk" must be zk://HOST:PORT/PATH, but got "${options.zk}"`);
    }
    if (options.leader !== undefined && options.zk !== undefined) {
      throw new TypeError(`Options "--leader" and "--zk" cannot be used together`);
    }
    const lastPort = options.portsBase + options.agents * options.portsPerAgent - 1;
    if (lastPort > 65535) {
      throw new RangeError(
        `Options "--ports-base" ${options.portsBase} and "--ports-per-agent" ${options.portsPerAgent} give ${options.agents} agents ports up to ${lastPort}, past 65535`,
      );
    }
    if (options.port > 65535) {
      throw new RangeError(`Option "--port" must be at most 65535, but got "${values.port}"`);
    }
  } catch (error) {
    console.error(`${(error as Error).message}; ${USAGE}`);
    return 2;
  }
  const ownDir = options.workDir === undefined;
  const workDir = options.workDir ?? await Deno.makeTempDir({ prefix: "mesos-local-" });
  const { url, cluster } = await startLocalCluster({
    agents: options.agents,
    port: options.port,
    cpus: options.cpus,
    mem: options.mem,
    portsBase: options.portsBase,
    portsPerAgent: options.portsPerAgent,
    workDir,
    ...(options.leader !== undefined ? { leader: options.leader } : {}),
    ...(options.zk !== undefined ? { zk: options.zk } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    log: options.verbose ? (line) => console.error(line) : undefined,
  });
  console.log(url);
  const { promise, resolve } = Promise.withResolvers<void>();
  const onSignal = () => resolve();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  await promise;
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  await cluster.stop();
  if (ownDir) await Deno.remove(workDir, { recursive: true }).catch(() => {});
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
