/**
 * The module a {@linkcode ProxyThread} starts as its worker when running from
 * source (a bundled executor starts itself instead; see `cmd/executor.ts`).
 *
 * @module
 */
import { serveProxyThread } from "./proxy_thread.ts";

serveProxyThread();
