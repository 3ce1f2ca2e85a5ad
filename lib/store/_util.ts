/**
 * Helpers shared by the store backends: key checks, path-prefix matching and
 * bounded waiting.
 *
 * @module
 */
import { StoreUnavailableError } from "./store.ts";

/** Default bound for one store operation, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 5_000;

/**
 * Checks a key: it must start with `/`, must not end with `/` (except the
 * root `/` used as a prefix) and must not hold empty segments.
 */
export function checkKey(key: string, what = "key"): void {
  if (typeof key !== "string" || !key.startsWith("/")) {
    throw new TypeError(`Cannot use ${what} "${key}": it must start with "/"`);
  }
  if (key === "/" && what === "prefix") return;
  if (key.endsWith("/") || key.includes("//")) {
    throw new TypeError(
      `Cannot use ${what} "${key}": it must not end with "/" or hold an empty segment`,
    );
  }
}

/**
 * Normalises a prefix for path-prefix matching: `"/a/b/"` and `"/a/b"` both
 * become `"/a/b"`; `"/"` becomes `""` (everything).
 */
export function normalizePrefix(prefix: string): string {
  const trimmed = prefix.length > 1 && prefix.endsWith("/") ? prefix.slice(0, -1) : prefix;
  checkKey(trimmed, "prefix");
  return trimmed === "/" ? "" : trimmed;
}

/** Checks the keys of a batch: each valid, none twice. */
export function checkBatch(writes: readonly { key: string }[]): void {
  const seen = new Set<string>();
  for (const w of writes) {
    checkKey(w.key);
    if (seen.has(w.key)) {
      throw new TypeError(`Cannot write key "${w.key}" twice in one batch`);
    }
    seen.add(w.key);
  }
}

/** True when `key` is `prefix` itself or lies under it (`prefix` normalised). */
export function underPrefix(key: string, prefix: string): boolean {
  return key === prefix || key.startsWith(`${prefix}/`);
}

/** Compares two keys by their UTF-8 bytes, the order etcd and SQLite use. */
export function compareKeys(a: string, b: string): number {
  const ea = new TextEncoder().encode(a);
  const eb = new TextEncoder().encode(b);
  const n = Math.min(ea.length, eb.length);
  for (let i = 0; i < n; i++) {
    const d = ea[i]! - eb[i]!;
    if (d !== 0) return d;
  }
  return ea.length - eb.length;
}

/**
 * Races `promise` against a timer; on time-out or failure throws
 * {@linkcode StoreUnavailableError} with `what` (which names the backend,
 * endpoint and operation). A StoreUnavailableError passes through as is.
 */
export async function bounded<T>(
  what: string,
  timeoutMs: number,
  promise: Promise<T>,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new StoreUnavailableError(`${what} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  // A late rejection after the time-out must not become unhandled.
  promise.catch(() => {});
  try {
    return await Promise.race([promise, timeout]);
  } catch (error) {
    if (error instanceof StoreUnavailableError) throw error;
    throw new StoreUnavailableError(`${what} failed: ${(error as Error)?.message ?? error}`, {
      cause: error,
    });
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Retries `fn` every 250 ms, unawaited and without keeping the process alive,
 * until it succeeds, `closed()` says the store is closed, or `forMs` passed
 * (for clean-ups such as a lock release while the server is away).
 */
export function retryInBackground(
  fn: () => Promise<void>,
  closed: () => boolean,
  forMs: number,
): void {
  const until = Date.now() + forMs;
  const attempt = async () => {
    if (closed() || Date.now() > until) return;
    try {
      await fn();
    } catch {
      Deno.unrefTimer(setTimeout(attempt, 250));
    }
  };
  Deno.unrefTimer(setTimeout(attempt, 250));
}
