/**
 * Several {@linkcode RedisProxy} threads on one port (SO_REUSEPORT: the
 * kernel spreads new connections over them), told the master together. Each
 * thread has its own shared server connection. When the threads cannot be
 * started (no `--unstable-net`, or a build without the worker module) the
 * group runs on the calling thread alone.
 *
 * @module
 */
import { type MasterAddress, type ProxyOptions, RedisProxy } from "./proxy.ts";
import type { FromWorker, ToWorker } from "./_worker.ts";

/** Options of {@linkcode ProxyGroup.start}. */
export interface ProxyGroupOptions extends ProxyOptions {
  /** Threads serving connections, the calling one included. Default 1. */
  threads?: number;
}

interface Thread {
  worker: Worker;
  post(message: ToWorker): void;
  closed: Promise<void>;
}

/** A proxy served by one or more threads. */
export class ProxyGroup {
  readonly #main: RedisProxy;
  readonly #threads: Thread[];

  private constructor(main: RedisProxy, threads: Thread[]) {
    this.#main = main;
    this.#threads = threads;
  }

  /** Starts the proxy; returns once every thread listens. */
  static async start(options: ProxyGroupOptions): Promise<ProxyGroup> {
    const wanted = options.threads ?? 1;
    if (!Number.isInteger(wanted) || wanted < 1 || wanted > 64) {
      throw new RangeError(
        `Cannot start proxy: invalid threads ${JSON.stringify(options.threads)}`,
      );
    }
    const log = options.log ?? (() => {});
    const { threads: _, log: __, ...base } = options;
    if (wanted === 1) return new ProxyGroup(new RedisProxy(options), []);
    if (!unstableNet()) {
      log(`Proxy runs on one thread: several need SO_REUSEPORT (deno --unstable-net)`);
      return new ProxyGroup(new RedisProxy(options), []);
    }
    const main = new RedisProxy({ ...options, reusePort: true });
    const port = main.addr.port;
    const threads: Thread[] = [];
    for (let i = 1; i < wanted; i++) {
      const thread = await startThread({ ...base, port }, log).catch((error: Error) => {
        log(`Proxy thread ${i} did not start: ${error.message}`);
        return undefined;
      });
      if (thread === undefined) break;
      threads.push(thread);
    }
    return new ProxyGroup(main, threads);
  }

  /** The address the proxy listens on. */
  get addr(): Deno.NetAddr {
    return this.#main.addr;
  }

  /** The master followed, if any. */
  get master(): MasterAddress | null {
    return this.#main.master;
  }

  /** How many threads serve connections. */
  get threads(): number {
    return 1 + this.#threads.length;
  }

  /** Tells every thread the master (see {@linkcode RedisProxy.setMaster}). */
  setMaster(master: MasterAddress | null): boolean {
    const taken = this.#main.setMaster(master);
    if (taken) { for (const t of this.#threads) t.post({ type: "master", master }); }
    return taken;
  }

  /** The calling thread's counters (the others are not gathered). */
  stats(): ReturnType<RedisProxy["stats"]> {
    return this.#main.stats();
  }

  /** Closes every thread. */
  async close(): Promise<void> {
    for (const t of this.#threads) t.post({ type: "close" });
    await Promise.all([
      this.#main.close(),
      ...this.#threads.map((t) =>
        Promise.race([t.closed, new Promise<void>((r) => setTimeout(r, 2000))]).then(() =>
          t.worker.terminate()
        )
      ),
    ]);
  }
}

/**
 * Whether Deno's unstable network APIs are on (`reusePort` without them ends
 * the process): `Deno.listenDatagram` only exists with `--unstable-net`.
 */
function unstableNet(): boolean {
  return typeof (Deno as unknown as Record<string, unknown>).listenDatagram === "function";
}

function startThread(options: ProxyOptions, log: (line: string) => void): Promise<Thread> {
  return new Promise((resolve, reject) => {
    let worker: Worker;
    try {
      worker = new Worker(new URL("./_worker.ts", import.meta.url), { type: "module" });
    } catch (error) {
      reject(error);
      return;
    }
    let onClosed: () => void = () => {};
    const closed = new Promise<void>((r) => (onClosed = r));
    const post = (message: ToWorker) => worker.postMessage(message);
    const timer = setTimeout(() => {
      worker.terminate();
      reject(new Error("no answer within 60 s"));
    }, 60_000);
    worker.onerror = (event) => {
      event.preventDefault();
      clearTimeout(timer);
      worker.terminate();
      reject(new Error(event.message));
    };
    worker.onmessage = (event: MessageEvent<FromWorker>) => {
      const m = event.data;
      if (m.type === "ready") {
        clearTimeout(timer);
        resolve({ worker, post, closed });
      } else if (m.type === "failed") {
        clearTimeout(timer);
        worker.terminate();
        reject(new Error(m.message));
      } else if (m.type === "log") {
        log(m.line);
      } else if (m.type === "closed") {
        onClosed();
      }
    };
    post({ type: "start", options });
  });
}
