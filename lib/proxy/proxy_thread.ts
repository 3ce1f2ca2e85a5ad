/**
 * Proxies on a thread of their own: a Web Worker hosting any number of
 * {@linkcode RedisProxy}s, each under an id, driven by messages.
 *
 * MrRedisExecutor runs its proxy tasks here so that their clients do not
 * wait on the executor's own thread. That thread blocks in every spawn of a
 * redis-server until the child has exec'd (tens of ms on a busy host, and a
 * create launches a dozen or more at once), and it does the executor's
 * work besides. A proxy thread sleeps between requests, so the kernel runs
 * it as soon as a request arrives, as it does a redis-server.
 *
 * Both sides are here: {@linkcode ProxyThread} for the thread that starts
 * the worker, {@linkcode serveProxyThread} for the worker itself (see
 * `_thread_worker.ts`, or a bundled program that calls it when it finds
 * itself started as a worker named `PROXY_THREAD_NAME` of `task_spec.ts`).
 *
 * @module
 */
import { type MasterAddress, type ProxyOptions, RedisProxy, takesMaster } from "./proxy.ts";
import { PROXY_THREAD_NAME } from "./task_spec.ts";

/** The options a proxy on the thread takes (its log goes through the thread's). */
export type ThreadProxyOptions = Omit<ProxyOptions, "log" | "reusePort">;

/** Messages to the thread. */
export type ToProxyThread =
  | { type: "open"; id: string; options: ThreadProxyOptions }
  | { type: "master"; id: string; master: MasterAddress | null }
  | { type: "close"; id: string };

/** Messages from the thread. */
export type FromProxyThread =
  | { type: "ready" }
  | { type: "listening"; id: string }
  | { type: "failed"; id: string; message: string }
  | { type: "stopped"; id: string }
  | { type: "closed"; id: string }
  | { type: "log"; id: string; line: string };

/** What the owner of a proxy uses, wherever it runs. */
export interface ProxyHandle {
  /** See {@linkcode RedisProxy.setMaster}. */
  setMaster(master: MasterAddress | null): boolean;
  /** See {@linkcode RedisProxy.serving}. */
  readonly serving: Promise<void>;
  /** See {@linkcode RedisProxy.closed}. */
  readonly closed: boolean;
  /** Why it stopped accepting connections when nobody closed it, where known. */
  readonly stopReason?: string;
  /** See {@linkcode RedisProxy.close}. */
  close(): Promise<void>;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

class ThreadProxy implements ProxyHandle {
  readonly #thread: ProxyThread;
  readonly #id: string;
  #master: MasterAddress | null = null;
  #closed = false;
  #stopReason: string | undefined;
  #stopped!: () => void;
  #onClosed!: () => void;
  readonly serving: Promise<void>;
  readonly #closedByThread: Promise<void>;

  constructor(thread: ProxyThread, id: string) {
    this.#thread = thread;
    this.#id = id;
    this.serving = new Promise((resolve) => (this.#stopped = resolve));
    this.#closedByThread = new Promise((resolve) => (this.#onClosed = resolve));
  }

  get closed(): boolean {
    return this.#closed;
  }

  get stopReason(): string | undefined {
    return this.#stopReason;
  }

  setMaster(master: MasterAddress | null): boolean {
    // RedisProxy's rule, applied here too to answer at once.
    if (this.#closed || !takesMaster(this.#master, master)) return false;
    this.#master = master && { ...master };
    this.#thread.post({ type: "master", id: this.#id, master });
    return true;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#thread.post({ type: "close", id: this.#id });
    await this.#closedByThread;
  }

  /** The thread says the proxy stopped accepting connections (or the thread is gone). */
  stopped(): void {
    this.#stopped();
  }

  /** The thread closed it, or is gone (`reason`). */
  closedByThread(reason?: string): void {
    this.#stopReason ??= reason;
    this.#stopped();
    this.#onClosed();
  }
}

/** What a {@linkcode ProxyThread} tells its owner. */
export interface ProxyThreadEvents {
  /** A line logged by the proxy `id`. */
  log(id: string, line: string): void;
  /** The thread failed; every proxy on it has stopped (their `serving` settled). */
  failed(reason: string): void;
}

/** The owner's side of a proxy thread. */
export class ProxyThread {
  readonly #worker: Worker;
  readonly #events: ProxyThreadEvents;
  readonly #opening = new Map<
    string,
    { resolve(p: ThreadProxy): void; reject(e: Error): void; proxy: ThreadProxy }
  >();
  readonly #proxies = new Map<string, ThreadProxy>();
  #failure: string | undefined;
  #terminated = false;

  private constructor(worker: Worker, events: ProxyThreadEvents) {
    this.#worker = worker;
    this.#events = events;
  }

  /**
   * Starts the worker from `module` (a module that calls
   * {@linkcode serveProxyThread}); resolves once it serves, rejects when it
   * cannot be loaded or does not answer within `timeoutMs`.
   */
  static start(
    module: URL,
    events: ProxyThreadEvents,
    timeoutMs = 30_000,
  ): Promise<ProxyThread> {
    return new Promise((resolve, reject) => {
      const refuse = (why: string) =>
        reject(new Error(`Cannot start the proxy thread from ${module}: ${why}`));
      let worker: Worker;
      try {
        worker = new Worker(module, { type: "module", name: PROXY_THREAD_NAME });
      } catch (error) {
        refuse(errorText(error));
        return;
      }
      const thread = new ProxyThread(worker, events);
      let ready = false;
      const timer = setTimeout(() => {
        worker.terminate();
        refuse(`no answer within ${timeoutMs} ms`);
      }, timeoutMs);
      worker.onerror = (event) => {
        event.preventDefault();
        const message = event.message ?? "unknown error";
        if (!ready) {
          clearTimeout(timer);
          worker.terminate();
          refuse(message);
        } else {
          thread.#fail(`The proxy thread failed: ${message}`);
        }
      };
      worker.onmessage = (event: MessageEvent<FromProxyThread>) => {
        if (event.data.type === "ready") {
          ready = true;
          clearTimeout(timer);
          resolve(thread);
        } else {
          thread.#receive(event.data);
        }
      };
    });
  }

  /** Why the thread is gone, once it is (every proxy on it stopped with it). */
  get failure(): string | undefined {
    return this.#failure;
  }

  /** Proxies open or opening on the thread. */
  get size(): number {
    return this.#proxies.size + this.#opening.size;
  }

  /** Starts a proxy on the thread; resolves once it listens, rejects with why it cannot. */
  open(id: string, options: ThreadProxyOptions): Promise<ProxyHandle> {
    if (this.#failure !== undefined || this.#terminated) {
      return Promise.reject(new Error(this.#failure ?? "The proxy thread is stopped"));
    }
    if (this.#proxies.has(id) || this.#opening.has(id)) {
      return Promise.reject(new Error(`A proxy "${id}" already runs on the proxy thread`));
    }
    return new Promise((resolve, reject) => {
      this.#opening.set(id, { resolve, reject, proxy: new ThreadProxy(this, id) });
      this.post({ type: "open", id, options });
    });
  }

  /** Sends a message to the thread (dropped once it is gone). */
  post(message: ToProxyThread): void {
    if (this.#failure !== undefined || this.#terminated) {
      // Gone: a close is answered here, as the thread would have.
      if (message.type === "close") this.#proxies.get(message.id)?.closedByThread();
      return;
    }
    this.#worker.postMessage(message);
  }

  /** Stops the worker at once; every proxy still on it stops too. */
  terminate(): void {
    if (this.#terminated) return;
    this.#terminated = true;
    this.#worker.terminate();
    this.#drop("The proxy thread is stopped");
  }

  #receive(message: FromProxyThread): void {
    if (message.type === "ready") return;
    if (message.type === "log") {
      this.#events.log(message.id, message.line);
      return;
    }
    const opening = this.#opening.get(message.id);
    if (opening) {
      this.#opening.delete(message.id);
      if (message.type === "listening") {
        this.#proxies.set(message.id, opening.proxy);
        opening.resolve(opening.proxy);
      } else {
        opening.reject(
          new Error(message.type === "failed" ? message.message : "closed while opening"),
        );
      }
      return;
    }
    const proxy = this.#proxies.get(message.id);
    if (!proxy) return;
    if (message.type === "stopped") {
      proxy.stopped();
    } else if (message.type === "closed") {
      this.#proxies.delete(message.id);
      proxy.closedByThread();
    }
  }

  #fail(reason: string): void {
    if (this.#failure !== undefined || this.#terminated) return;
    this.#failure = reason;
    this.#worker.terminate();
    this.#events.failed(reason);
    this.#drop(reason);
  }

  #drop(reason: string): void {
    for (const { reject } of this.#opening.values()) reject(new Error(reason));
    this.#opening.clear();
    for (const proxy of this.#proxies.values()) proxy.closedByThread(reason);
    this.#proxies.clear();
  }
}

/**
 * The worker's side: serves the messages of a {@linkcode ProxyThread} on
 * this thread. Call it once, in a worker.
 */
export function serveProxyThread(): void {
  const scope = self as unknown as {
    postMessage(message: FromProxyThread): void;
    onmessage: ((event: MessageEvent<ToProxyThread>) => void) | null;
  };
  const post = (message: FromProxyThread) => scope.postMessage(message);
  const proxies = new Map<string, RedisProxy>();
  scope.onmessage = async (event) => {
    const message = event.data;
    if (message.type === "open") {
      const { id } = message;
      let proxy: RedisProxy;
      try {
        proxy = new RedisProxy({
          ...message.options,
          log: (line) => post({ type: "log", id, line }),
        });
      } catch (error) {
        post({ type: "failed", id, message: errorText(error) });
        return;
      }
      proxies.set(id, proxy);
      post({ type: "listening", id });
      proxy.serving.then(() => {
        if (!proxy.closed) post({ type: "stopped", id });
      });
    } else if (message.type === "master") {
      proxies.get(message.id)?.setMaster(message.master);
    } else if (message.type === "close") {
      const proxy = proxies.get(message.id);
      proxies.delete(message.id);
      await proxy?.close().catch(() => {});
      post({ type: "closed", id: message.id });
    }
  };
  post({ type: "ready" });
}
