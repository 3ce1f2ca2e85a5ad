/**
 * Executor start-up: the time from spawning `deno run -A cmd/executor.ts`
 * (what the development launcher runs) to its first SUBSCRIBE reaching the
 * agent endpoint, measured against a stand-in endpoint that answers 503.
 *
 *     deno run -A bench/executor_startup.ts [--samples 5] [--executor path/to/executor.ts]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { median } from "./_harness.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Spawns the executor once; resolves with ms from spawn to its first SUBSCRIBE. */
export async function executorStartupMs(
  executor = `${ROOT}cmd/executor.ts`,
  config = `${ROOT}deno.json`,
): Promise<number> {
  const sandbox = await Deno.makeTempDir({ prefix: "mr-redis-bench-exec-" });
  let arrived!: (at: number) => void;
  const first = new Promise<number>((resolve) => arrived = resolve);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const at = performance.now();
    await req.body?.cancel();
    arrived(at);
    return new Response("bench: not an agent", { status: 503 });
  });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", config, executor],
    env: {
      MESOS_AGENT_ENDPOINT: `127.0.0.1:${server.addr.port}`,
      MESOS_FRAMEWORK_ID: "bench-framework",
      MESOS_EXECUTOR_ID: "bench-executor",
      MESOS_SANDBOX: sandbox,
      MESOS_CHECKPOINT: "0",
    },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  });
  const started = performance.now();
  const proc = child.spawn();
  try {
    const at = await Promise.race([
      first,
      proc.status.then(() => Promise.reject(new Error("The executor exited before subscribing"))),
    ]);
    return at - started;
  } finally {
    try {
      proc.kill("SIGKILL");
    } catch { /* gone */ }
    await proc.status;
    await server.shutdown();
    await Deno.remove(sandbox, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { samples: { type: "string", default: "5" }, executor: { type: "string" } },
  });
  const samples: number[] = [];
  for (let i = 0; i < Number(values.samples); i++) {
    samples.push(await executorStartupMs(values.executor));
  }
  console.log(
    `executor spawn → first SUBSCRIBE: median ${median(samples).toFixed(0)} ms (${
      samples.map((s) => s.toFixed(0)).join(", ")
    })`,
  );
}
