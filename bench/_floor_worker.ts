/**
 * The worker of `bench/executor_floor.ts`: the least a per-agent Deno
 * supervisor of redis-servers has to do, and nothing of Mesos. It reads one
 * JSON line per batch from stdin (`{"servers": [{"port", "dir", "replicaOf"?}]}`),
 * starts those redis-servers with their output piped, reads their log lines
 * and prints `ready <port>` when a master accepts connections and `synced
 * <port>` when a replica has loaded its initial sync. With `--info` it also
 * opens one connection to each server once it is ready and reads INFO from
 * it, as a monitor would. `stop` (or the end of stdin) stops every server.
 *
 * Not a benchmark by itself; see `bench/executor_floor.ts`.
 *
 * @module
 */
import { RedisClient } from "../lib/redis/client.ts";
import { directRedisArgs } from "./_harness.ts";

interface Server {
  port: number;
  dir: string;
  replicaOf?: number;
}

const withInfo = Deno.args.includes("--info");
const encoder = new TextEncoder();
const children: Deno.ChildProcess[] = [];
const clients: RedisClient[] = [];

function say(line: string): void {
  const bytes = encoder.encode(`${line}\n`);
  for (let done = 0; done < bytes.length;) done += Deno.stdout.writeSync(bytes.subarray(done));
}

async function watch(server: Server, child: Deno.ChildProcess): Promise<void> {
  const want = server.replicaOf === undefined
    ? /Ready to accept connections/
    : /sync: Finished with success/;
  let pending = "";
  let told = false;
  const decoder = new TextDecoder();
  // stderr is read too (and dropped), as a supervisor keeping logs would.
  child.stderr.pipeTo(new WritableStream()).catch(() => {});
  for await (const chunk of child.stdout) {
    pending += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (!told && want.test(line)) {
        told = true;
        if (withInfo) {
          const redis = new RedisClient({ host: "127.0.0.1", port: server.port });
          clients.push(redis);
          await redis.call("INFO", []);
        }
        say(`${server.replicaOf === undefined ? "ready" : "synced"} ${server.port}`);
      }
    }
  }
}

function start(server: Server): void {
  Deno.mkdirSync(server.dir, { recursive: true });
  const child = new Deno.Command("redis-server", {
    args: directRedisArgs(server.dir, server.port, [
      "--maxmemory",
      "10mb",
      ...(server.replicaOf === undefined
        ? []
        : ["--replicaof", "127.0.0.1", String(server.replicaOf)]),
    ]),
    cwd: server.dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  children.push(child);
  watch(server, child).catch((error) => say(`error ${server.port} ${(error as Error).message}`));
}

const decoder = new TextDecoder();
let buffered = "";
say("up");
for await (const chunk of Deno.stdin.readable) {
  buffered += decoder.decode(chunk, { stream: true });
  let newline: number;
  let stop = false;
  while ((newline = buffered.indexOf("\n")) >= 0) {
    const line = buffered.slice(0, newline).trim();
    buffered = buffered.slice(newline + 1);
    if (line === "stop") stop = true;
    else if (line) {
      for (const server of (JSON.parse(line) as { servers: Server[] }).servers) start(server);
    }
  }
  if (stop) break;
}
for (const redis of clients) redis.close();
for (const child of children) {
  try {
    child.kill("SIGKILL");
  } catch { /* gone already */ }
}
await Promise.allSettled(children.map((child) => child.status));
say("stopped");
