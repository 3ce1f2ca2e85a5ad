/**
 * The floor of any Deno executor: 1 master + N slaves started by three Deno
 * processes (one per agent, as the executors are) that pipe the servers'
 * output and watch it for ready and in sync (`bench/_floor_worker.ts`), with
 * nothing of Mesos: no scheduler, no master, no agent, no status updates, no
 * store. What a create adds over this is mr-redis's own work; what this adds
 * over the direct start is the cost of a Deno process per agent on the same
 * cores. Used by `bench/executor_floor.ts` and by the `create` step of
 * `bench/run.ts`.
 *
 * @module
 */
import { cpuSeconds, portBlock } from "./_harness.ts";

const WORKER = new URL("./_floor_worker.ts", import.meta.url).pathname;

/** One floor worker: a Deno process reading batches of servers on stdin. */
class FloorWorker {
  readonly child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  readonly lines: Promise<void>;

  constructor(onLine: (line: string) => void, withInfo: boolean) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", WORKER, ...(withInfo ? ["--info"] : [])],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.child.stdin.getWriter();
    const stdout = this.child.stdout;
    this.lines = (async () => {
      let pending = "";
      const decoder = new TextDecoder();
      for await (const chunk of stdout) {
        pending += decoder.decode(chunk, { stream: true });
        let newline: number;
        while ((newline = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          for (const w of this.#waiters.splice(0)) {
            if (w.re.test(line)) w.resolve(line);
            else this.#waiters.push(w);
          }
          onLine(line);
        }
      }
    })();
  }

  waitFor(re: RegExp): Promise<string> {
    return new Promise((resolve) => this.#waiters.push({ re, resolve }));
  }

  async send(line: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(`${line}\n`));
  }

  async stop(): Promise<void> {
    await this.send("stop").catch(() => {});
    await this.#writer.close().catch(() => {});
    await this.child.status;
    await this.lines.catch(() => {});
  }
}

/** Options of {@linkcode floorStart}. */
export interface FloorOptions {
  /** Count the workers' start in the time (and in their CPU). */
  cold: boolean;
  /** Deno processes, one per agent. Default 3. */
  agents?: number;
  /** Each worker also reads INFO once from each of its servers (a monitor's first check). */
  withInfo?: boolean;
  /** Give up after this long, in ms. Default 60 s. */
  timeoutMs?: number;
}

/**
 * Starts 1 master + `slaves` slaves through the floor's workers: the master
 * on the first, the slaves round the workers once the master accepts
 * connections (the executors too hold a slave until its master listens);
 * resolves once every slave has loaded its initial sync, with the seconds
 * that took and the workers' CPU-seconds meanwhile (with their start when
 * `cold`). Stops every worker and server before it returns or throws.
 */
export async function floorStart(
  slaves: number,
  options: FloorOptions,
): Promise<{ seconds: number; cpuSeconds: number }> {
  const agents = options.agents ?? 3;
  const block = portBlock(slaves + 1);
  const dir = await Deno.makeTempDir({ prefix: "mr-redis-floor-" });
  let synced = 0;
  let allSynced!: () => void;
  let failed!: (error: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    allSynced = resolve;
    failed = reject;
  });
  const onLine = (line: string) => {
    if (line.startsWith("synced ") && ++synced === slaves) allSynced();
    if (line.startsWith("error")) failed(new Error(`floor worker: ${line}`));
  };
  if (slaves === 0) allSynced();
  let workers: FloorWorker[] = [];
  const spawn = () =>
    workers = Array.from({ length: agents }, () => new FloorWorker(onLine, !!options.withInfo));
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    if (!options.cold) {
      spawn();
      await Promise.all(workers.map((w) => w.waitFor(/^up$/)));
    }
    const cpu = () => workers.reduce((sum, w) => sum + cpuSeconds(w.child.pid), 0);
    const cpu0 = options.cold ? 0 : cpu();
    const started = performance.now();
    if (options.cold) spawn();
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new Error(`the floor's 1+${slaves} did not sync within ${timeoutOf(options)} ms`)),
        timeoutOf(options),
      );
    });
    const [masterPort, ...slavePorts] = block.ports as [number, ...number[]];
    const masterReady = workers[0]!.waitFor(new RegExp(`^ready ${masterPort}$`));
    await workers[0]!.send(JSON.stringify({ servers: [{ port: masterPort, dir: `${dir}/m` }] }));
    await Promise.race([masterReady, done, deadline]);
    await Promise.all(workers.map((w, i) =>
      w.send(JSON.stringify({
        servers: slavePorts.filter((_, j) => j % agents === i).map((port) => ({
          port,
          dir: `${dir}/s${port}`,
          replicaOf: masterPort,
        })),
      }))
    ));
    await Promise.race([done, deadline]);
    const used = cpu() - cpu0;
    return { seconds: (performance.now() - started) / 1000, cpuSeconds: used };
  } finally {
    clearTimeout(timer);
    await Promise.all(workers.map((w) => w.stop()));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    block.release();
  }
}

function timeoutOf(options: FloorOptions): number {
  return options.timeoutMs ?? 60_000;
}
