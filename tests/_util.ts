/**
 * Small helpers shared by tests: free loopback ports, polling, temp dirs.
 *
 * @module
 */
import { takePort } from "./_ports.ts";

/**
 * A loopback port nothing listens on, that no other test (here or in a
 * parallel suite) is handed: see `_ports.ts`.
 */
export function freePort(): number {
  return takePort();
}

/**
 * Polls `check` until it returns a truthy value (returned) or `timeoutMs`
 * passes (throws an Error naming `what` and the last failure).
 */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  { timeoutMs = 30_000, intervalMs = 100 } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(
    `Timed out after ${timeoutMs} ms waiting for ${what}${
      last ? `: ${(last as Error).message ?? last}` : ""
    }`,
  );
}

/** Makes a temp dir under the system temp folder; remove it with `Deno.remove(dir, {recursive: true})`. */
export function tempDir(prefix: string): Promise<string> {
  return Deno.makeTempDir({ prefix: `mr-redis-${prefix}-` });
}
