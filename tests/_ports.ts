/**
 * Loopback ports for tests that no other test is handed at the same time —
 * in this test process, in a parallel one, or in another checkout's suite on
 * the same machine — and that nothing else listens on.
 *
 * Ports come in blocks of {@linkcode BLOCK_SIZE} between 10000 and 32749,
 * below the kernel's ephemeral range (32768–60999, where port-0 listeners and
 * outgoing connections take their ports). A block is held by an exclusive
 * `flock` on `/tmp/mr-redis-test-ports/{block}.lock` for as long as its
 * holder keeps it (the kernel drops the lock when the process ends, so a
 * crashed test leaks nothing), and every port of it is probed free before it
 * is handed out; a block with a port in use by someone else is skipped.
 *
 * @module
 */

/** Ports per lock. */
export const BLOCK_SIZE = 50;
const FIRST_BLOCK = 10_000 / BLOCK_SIZE;
const END_BLOCK = Math.floor(32_768 / BLOCK_SIZE); // exclusive: the last block ends at 32749
const LOCK_DIR = "/tmp/mr-redis-test-ports";

/** A range of ports held for one test. */
export interface PortRange {
  /** First port. */
  readonly base: number;
  /** Number of ports. */
  readonly size: number;
  /** Gives the range back (closes its locks). Idempotent. */
  release(): void;
}

/** True when nothing listens on `port` (IPv4 or IPv6, any address). */
export function portIsFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "0.0.0.0", port }).close();
  } catch {
    return false;
  }
  try {
    // A listener on [::] alone would not stop the IPv4 probe above on every kernel.
    Deno.listen({ hostname: "::", port }).close();
  } catch (error) {
    // A host without IPv6 cannot hold the port there either.
    if (!(error instanceof Deno.errors.AddrNotAvailable)) return false;
  }
  return true;
}

function lockBlock(block: number): Deno.FsFile | undefined {
  Deno.mkdirSync(LOCK_DIR, { recursive: true, mode: 0o777 });
  const file = Deno.openSync(`${LOCK_DIR}/${block}.lock`, { create: true, write: true });
  if (file.tryLockSync(true)) return file;
  file.close();
  return undefined;
}

/**
 * Holds `size` consecutive ports (rounded up to whole blocks) that no other
 * holder has and nothing listens on, starting at a random block. Throws when
 * none can be found.
 */
export function reservePortRange(size: number): PortRange {
  const blocks = Math.ceil(size / BLOCK_SIZE);
  const span = END_BLOCK - FIRST_BLOCK - blocks + 1;
  if (blocks < 1 || span < 1) throw new RangeError(`Cannot reserve ${size} test ports`);
  const start = Math.floor(Math.random() * span);
  for (let i = 0; i < span; i++) {
    const first = FIRST_BLOCK + (start + i) % span;
    const held: Deno.FsFile[] = [];
    let ok = true;
    for (let b = first; b < first + blocks && ok; b++) {
      const file = lockBlock(b);
      if (file) held.push(file);
      else ok = false;
    }
    const base = first * BLOCK_SIZE;
    for (let p = base; ok && p < base + blocks * BLOCK_SIZE; p++) ok = portIsFree(p);
    if (!ok) {
      for (const file of held) file.close();
      continue;
    }
    let released = false;
    return {
      base,
      size: blocks * BLOCK_SIZE,
      release() {
        if (released) return;
        released = true;
        for (const file of held) file.close();
      },
    };
  }
  throw new Error(`No free range of ${size} test ports between 10000 and 32749`);
}

/**
 * Hands out single ports from blocks this process holds until it ends. The
 * first block is taken when this module loads, so that a test's resource
 * check does not count its lock file as a leak.
 */
class PortPool {
  #range: PortRange | undefined;
  #next = 0;

  constructor() {
    this.#range = reservePortRange(BLOCK_SIZE);
  }

  take(): number {
    for (;;) {
      if (!this.#range || this.#next >= this.#range.size) {
        this.#range = reservePortRange(BLOCK_SIZE);
        this.#next = 0;
      }
      const port = this.#range.base + this.#next++;
      // Free when the block was taken; check again in case something took it since.
      if (portIsFree(port)) return port;
    }
  }
}

const pool = new PortPool();

/**
 * A loopback port nothing listens on and that no other test is handed: from
 * this process's held blocks, never the same one twice.
 */
export function takePort(): number {
  return pool.take();
}

/**
 * Holds the blocks of `base`…`base + size - 1` again (a restarted process
 * that keeps its ports); blocks another holder took meanwhile are left to it,
 * so the hold is best effort. Nothing is probed: the caller's own processes
 * may still listen there.
 */
export function holdPortRange(base: number, size: number): PortRange {
  const held: Deno.FsFile[] = [];
  const first = Math.floor(base / BLOCK_SIZE);
  const last = Math.floor((base + size - 1) / BLOCK_SIZE);
  for (let b = first; b <= last; b++) {
    const file = b >= FIRST_BLOCK && b < END_BLOCK ? lockBlock(b) : undefined;
    if (file) held.push(file);
  }
  let released = false;
  return {
    base,
    size,
    release() {
      if (released) return;
      released = true;
      for (const file of held) file.close();
    },
  };
}

/**
 * A loopback port to point a client at when nothing must answer: one of this
 * process's held ports, probed free, never handed to anyone else and never
 * listened on, so a connection to it is refused at once.
 */
export function deadPort(): number {
  return takePort();
}
