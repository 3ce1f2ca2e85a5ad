/**
 * The release the tests use: built once by `tools/release.ts` (no tarball)
 * into a cache under the system temp folder, keyed by a hash of the sources
 * that go into it, so test files and runs share one build. Parallel test
 * processes serialize on a lock file; builds unused for a day are removed
 * (the runtime inside is a hard link to the build cache, so a build is small).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { buildRelease } from "../tools/release.ts";

const ROOT = new URL("..", import.meta.url).pathname;

async function* files(dir: string): AsyncGenerator<string> {
  const entries = [];
  for await (const entry of Deno.readDir(join(ROOT, dir))) entries.push(entry);
  entries.sort((a, b) => a.name < b.name ? -1 : 1);
  for (const entry of entries) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* files(path);
    else if (entry.isFile) yield path;
  }
}

/** A hash of everything a release is built from. */
export async function sourceHash(): Promise<string> {
  const hash = createHash("sha256");
  const paths = ["deno.json", "deno.lock", "tools/release.ts"];
  for (const dir of ["cmd", "lib"]) for await (const path of files(dir)) paths.push(path);
  for (const path of paths) {
    hash.update(path).update("\0");
    try {
      hash.update(await Deno.readFile(join(ROOT, path)));
    } catch {
      // deno.lock may be missing
    }
  }
  return hash.digest("hex").slice(0, 16);
}

/** The directory of a release built from the current sources (built when missing). */
export async function testRelease(): Promise<string> {
  const root = join(Deno.env.get("TMPDIR") || "/tmp", "mr-redis-release-test");
  await Deno.mkdir(root, { recursive: true });
  const hash = await sourceHash();
  const dir = join(root, hash);
  using lock = await Deno.open(join(root, "lock"), { create: true, write: true });
  await lock.lock(true);
  try {
    try {
      if ((await Deno.stat(join(dir, "release.json"))).isFile) {
        await Deno.utime(dir, new Date(), new Date());
        return dir;
      }
    } catch {
      // not built yet
    }
    const building = join(root, `${hash}.building`);
    await Deno.remove(building, { recursive: true }).catch(() => {});
    await buildRelease({ out: building, tarball: false, log: () => {} });
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.rename(building, dir);
    const stale = Date.now() - 24 * 3600_000;
    for await (const entry of Deno.readDir(root)) {
      if (!entry.isDirectory || entry.name === hash) continue;
      const { mtime } = await Deno.stat(join(root, entry.name));
      if (mtime && mtime.getTime() < stale) {
        await Deno.remove(join(root, entry.name), { recursive: true }).catch(() => {});
      }
    }
    return dir;
  } finally {
    await lock.unlock();
  }
}
