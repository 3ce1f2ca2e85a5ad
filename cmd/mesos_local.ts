/**
 * `mesos-local`: runs a local Mesos-compatible master with N agents in its
 * own process and prints the master URL once it is ready.
 *
 * Usage: `deno run -A cmd/mesos_local.ts --agents N --port P [--work-dir DIR] [--cpus C] [--mem MB]
 * [--ports-base P] [--ports-per-agent N] [--reserved [I=]RESOURCES]...
 * [--gc-delay DURATION] [--leader HOST:PORT | --zk zk://HOST:PORT/PATH] [--network A.B.C.0/24]`:
 * `--leader` runs a non-leading master that redirects schedulers there; `--zk` joins a ZooKeeper
 * masters' group (smallest node leads); `--network` runs each agent as a host of its own (see
 * `lib/mesos/local/host_network.ts`).
 *
 * With `--work-dir` the running cluster is recorded in `DIR/cluster.json` (pid,
 * URL, agents), which `sched` uses to find it, and its agents keep their ids
 * across runs (`DIR/agents.json`). SIGTERM or SIGINT stop it gracefully: every
 * executor is shut down (redis-servers flush their data) before it exits.
 * `mesos_local stop --work-dir DIR` stops the cluster running in DIR and waits
 * until it is gone.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startLocalCluster } from "../lib/mesos/local/mod.ts";
import { runCommandExecutor } from "../lib/mesos/local/command_executor.ts";
import { downloadTo } from "../lib/mesos/local/fetcher.ts";
import { type Credential, parseCredentials } from "../lib/mesos/local/auth.ts";

import {
  findLocalCluster,
  readAgentIdentities,
  removeClusterState,
  stopLocalCluster,
  writeAgentIdentities,
  writeClusterState,
} from "../lib/mesos/local/daemon.ts";
import { parseDuration } from "../lib/mesos/executor_client.ts";
import {
  agentTotal,
  parseAgentResources,
  reservedPerAgent,
} from "../lib/mesos/local/agent_resources.ts";
import { MAX_HOST_AGENTS, parseHostNetwork } from "../lib/mesos/local/host_network.ts";

const USAGE =
  "Usage: mesos_local [--agents N] [--port P] [--work-dir DIR] [--cpus C] [--mem MB] [--ports-base P] [--ports-per-agent N] [--reserved [I=]RESOURCES]... [--gc-delay DURATION] [--leader HOST:PORT | --zk zk://HOST:PORT/PATH] [--credentials FILE] [--network A.B.C.0/24] [--verbose] | mesos_local stop --work-dir DIR";

/** `mesos_local stop --work-dir DIR`: stops the cluster running there; exit code 0 also when none ran. */
async function stopCommand(args: string[]): Promise<number> {
  let workDir: string | undefined;
  try {
    const { values } = parseArgs({
      args,
      options: { "work-dir": { type: "string" } },
      strict: true,
      allowPositionals: false,
    });
    workDir = values["work-dir"];
    if (!workDir) throw new TypeError('Option "--work-dir" is needed to stop a cluster');
  } catch (error) {
    console.error(`${(error as Error).message}; ${USAGE}`);
    return 2;
  }
  try {
    const { stopped, pid } = await stopLocalCluster(workDir);
    console.log(
      stopped
        ? `Stopped the local cluster in ${workDir} (pid ${pid})`
        : `No local cluster runs in ${workDir}`,
    );
    return 0;
  } catch (error) {
    console.error((error as Error).message);
    return 1;
  }
}

const HELP = `${USAGE}

Runs a local Mesos-compatible master with N agents and prints the master URL once it is ready.
  --agents N            agents to run (default 3)
  --port P              master port (default 0: any free port)
  --work-dir DIR        sandboxes (default a temp dir, removed at exit)
  --cpus C, --mem MB    resources of each agent (default 4 cpus, 4096 MB)
  --ports-base P        first port of agent 0's ports range (default 31000)
  --ports-per-agent N   size of each agent's ports range (default 1000)
  --reserved [I=]RESOURCES  static reservations of agent I (0-based; without I=: of every
                        agent), as a Mesos agent's --resources, carved out of its cpus, mem
                        and ports: 'cpus(redis):2;mem(redis):2048;ports(redis):[31000-31099]'
                        (repeat for other agents); only frameworks in that role are offered them
  --leader HOST:PORT    run a non-leading master that redirects schedulers there
  --zk zk://HOST:PORT/PATH  join a ZooKeeper masters' group (smallest node leads)
  --credentials FILE    authenticate frameworks (HTTP Basic) with the credentials in FILE
                        (JSON {"credentials": [{"principal", "secret"}]} or "principal secret"
                        lines), and executors with a token each (401 otherwise, as Mesos)
  --network A.B.C.0/24  run each agent as a host of its own (Linux, root): its own network
                        namespace and address A.B.C.(10+i) on a bridge at A.B.C.1, and a root of
                        its own holding only the system directories and its sandboxes and data
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

function gcDelay(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  try {
    return parseDuration(raw);
  } catch {
    throw new TypeError(
      `Option "--gc-delay" must be a duration such as "1days", "6hrs" or "30mins", but got "${raw}"`,
    );
  }
}

/** Runs the local cluster until SIGINT/SIGTERM; returns the exit code (2 for bad flags). */
export async function main(args: string[]): Promise<number> {
  // The agents start this program as the command executor of command tasks.
  if (args.length === 1 && args[0] === "--command-executor") return await runCommandExecutor();
  // An agent that is a host of its own downloads from there with this.
  if (args.length === 3 && args[0] === "--fetch") {
    try {
      await downloadTo(args[1]!, args[2]!);
      return 0;
    } catch (error) {
      console.error((error as Error).message);
      return 1;
    }
  }
  if (args[0] === "stop") return await stopCommand(args.slice(1));
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
        reserved: { type: "string", multiple: true },
        "gc-delay": { type: "string" },
        leader: { type: "string" },
        zk: { type: "string" },
        credentials: { type: "string" },
        network: { type: "string" },
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
      reserved: values.reserved ?? [],
      workDir: values["work-dir"],
      gcDelayMs: gcDelay(values["gc-delay"]),
      verbose: values.verbose === true,
      leader: values.leader,
      zk: values.zk,
      credentials: values.credentials === undefined
        ? undefined
        : await readCredentials(values.credentials),
      network: values.network === undefined
        ? undefined
        : parseHostNetwork(values.network, 'Option "--network"').subnet,
    };
    if (options.network !== undefined && options.agents > MAX_HOST_AGENTS) {
      throw new RangeError(
        `Option "--network" holds at most ${MAX_HOST_AGENTS} agents, but got --agents ${options.agents}`,
      );
    }
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
    options.reserved = reservedPerAgent(options.reserved, options.agents).map((text, i) => {
      if (text === "") return text;
      try {
        const base = options!.portsBase + i * options!.portsPerAgent;
        agentTotal({
          cpus: options!.cpus,
          mem: options!.mem,
          ports: { begin: base, end: base + options!.portsPerAgent - 1 },
        }, parseAgentResources(text));
        return text;
      } catch (error) {
        throw new RangeError(`Option "--reserved" of agent ${i}: ${(error as Error).message}`);
      }
    });
    if (options.port > 65535) {
      throw new RangeError(`Option "--port" must be at most 65535, but got "${values.port}"`);
    }
  } catch (error) {
    console.error(`${(error as Error).message}; ${USAGE}`);
    return 2;
  }
  const ownDir = options.workDir === undefined;
  const workDir = options.workDir ?? await Deno.makeTempDir({ prefix: "mesos-local-" });
  if (!ownDir) {
    await Deno.mkdir(workDir, { recursive: true });
    const running = await findLocalCluster(workDir);
    if (running) {
      console.error(
        `A local cluster already runs in ${workDir} (pid ${running.pid}, ${running.url}); stop it with: mesos_local stop --work-dir ${workDir}`,
      );
      return 1;
    }
  }
  // The agents keep their ids across runs in one work dir (when their ports range is the same).
  const known = ownDir ? [] : await readAgentIdentities(workDir);
  const agentIds = Array.from({ length: options.agents }, (_, i) => {
    const begin = options.portsBase + i * options.portsPerAgent;
    const k = known[i];
    return k && k.ports.begin === begin && k.ports.end === begin + options.portsPerAgent - 1
      ? k.id
      : undefined;
  });
  let started;
  try {
    started = await startLocalCluster({
      agentIds: agentIds.map((id, i) => id ?? `${crypto.randomUUID()}-S${i}`),
      ...(options.gcDelayMs !== undefined ? { gcDelayMs: options.gcDelayMs } : {}),
      agents: options.agents,
      port: options.port,
      cpus: options.cpus,
      mem: options.mem,
      portsBase: options.portsBase,
      portsPerAgent: options.portsPerAgent,
      reserved: options.reserved,
      workDir,
      ...(options.leader !== undefined ? { leader: options.leader } : {}),
      ...(options.zk !== undefined ? { zk: options.zk } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      ...(options.network !== undefined ? { network: options.network } : {}),
      log: options.verbose ? (line) => console.error(line) : undefined,
    });
  } catch (error) {
    console.error(`The local cluster could not start: ${(error as Error).message}`);
    if (ownDir) await Deno.remove(workDir, { recursive: true }).catch(() => {});
    return 1;
  }
  const { url, cluster } = started;
  if (!ownDir) {
    const agents = cluster.agents().map((a) => ({ id: a.id, ports: a.ports }));
    await writeAgentIdentities(workDir, agents);
    await writeClusterState(workDir, {
      url,
      masterId: cluster.masterId,
      agents,
      ...(options.network !== undefined ? { network: options.network } : {}),
      ...(options.reserved.some((r) => r !== "") ? { reserved: options.reserved } : {}),
    });
  }
  console.log(url);
  const { promise, resolve } = Promise.withResolvers<void>();
  const onSignal = () => resolve();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  await promise;
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  console.error(`${new Date().toISOString()} Stopping: shutting down every executor`);
  await cluster.stop({ graceful: true });
  if (ownDir) await Deno.remove(workDir, { recursive: true }).catch(() => {});
  else await removeClusterState(workDir);
  console.error(`${new Date().toISOString()} Stopped`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
