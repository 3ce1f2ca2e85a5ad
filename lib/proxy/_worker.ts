/**
 * One thread of a {@linkcode ProxyGroup}: a RedisProxy on the group's port
 * (SO_REUSEPORT), driven by messages from the group.
 *
 * @module
 */
import { type MasterAddress, type ProxyOptions, RedisProxy } from "./proxy.ts";

/** Messages a group sends to its threads. */
export type ToWorker =
  | { type: "start"; options: ProxyOptions }
  | { type: "master"; master: MasterAddress | null }
  | { type: "close" };

/** Messages a thread sends to its group. */
export type FromWorker =
  | { type: "ready" }
  | { type: "failed"; message: string }
  | { type: "log"; line: string }
  | { type: "closed" };

const scope = self as unknown as {
  postMessage(message: FromWorker): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  close(): void;
};
let proxy: RedisProxy | undefined;

scope.onmessage = async (event) => {
  const message = event.data;
  if (message.type === "start") {
    try {
      proxy = new RedisProxy({
        ...message.options,
        reusePort: true,
        log: (line) => scope.postMessage({ type: "log", line }),
      });
      scope.postMessage({ type: "ready" });
    } catch (error) {
      scope.postMessage({ type: "failed", message: (error as Error).message });
    }
  } else if (message.type === "master") {
    proxy?.setMaster(message.master);
  } else if (message.type === "close") {
    await proxy?.close();
    scope.postMessage({ type: "closed" });
    scope.close();
  }
};
