/**
 * Assertion helpers with the familiar names, on top of `node:assert` (the
 * `@std/assert` package is out of reach from these machines).
 *
 * @module
 */
import nodeAssert from "node:assert";

/** Fails unless `value` is truthy. */
export function assert(value: unknown, message?: string): asserts value {
  if (message === undefined) nodeAssert.ok(value);
  else nodeAssert.ok(value, message);
}

/** Deep strict equality. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  if (message === undefined) nodeAssert.deepStrictEqual(actual, expected);
  else nodeAssert.deepStrictEqual(actual, expected, message);
}

/** Deep strict inequality. */
export function assertNotEquals<T>(actual: T, expected: T, message?: string): void {
  if (message === undefined) nodeAssert.notDeepStrictEqual(actual, expected);
  else nodeAssert.notDeepStrictEqual(actual, expected, message);
}

/** Fails unless `text` matches `pattern`. */
export function assertMatch(text: string, pattern: RegExp, message?: string): void {
  if (message === undefined) nodeAssert.match(text, pattern);
  else nodeAssert.match(text, pattern, message);
}

/** Runs `fn`, fails unless it throws; returns what was thrown. */
export function assertThrows(fn: () => unknown, message?: string): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  nodeAssert.fail(message ?? "Expected the function to throw");
}

/** Awaits `fn()`, fails unless it rejects; returns the rejection reason. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  message?: string,
): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  nodeAssert.fail(message ?? "Expected the promise to reject");
}

/** Fails with `message`. */
export function fail(message: string): never {
  nodeAssert.fail(message);
}
