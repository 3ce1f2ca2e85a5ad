/**
 * A proxy thread that fails on its own 1 s after it starts serving: how
 * `proxy_thread_test.ts` shows what its owner sees when the thread dies.
 *
 * @module
 */
import { serveProxyThread } from "../lib/proxy/proxy_thread.ts";

serveProxyThread();
setTimeout(() => {
  throw new Error("the thread broke on purpose");
}, 1000);
