/**
 * `deno task release`: builds a release that needs no `deno compile`:
 * `dist/mr-redis-<version>-linux-x64/` and `dist/mr-redis-<version>-linux-x64.tar.gz`.
 *
 * Each program (`sched`, `MrRedisExecutor`, `mrr`, `mesos_local`) is one
 * JavaScript file made by `deno bundle` (npm packages and the text imports
 * of `.proto` and UI files inlined) plus a small shell launcher that runs it
 * with the Deno runtime of the release. The runtime is the npm registry
 * package `@deno/linux-x64-glibc` at the pinned version, fetched through npm
 * (`npm pack`) into a cache directory and checked against its pinned
 * integrity. The layout is described in `lib/release/layout.ts`.
 *
 * ```sh
 * deno task release                     # dist/mr-redis-<version>-linux-x64{,.tar.gz}
 * deno task release --out DIR --no-tarball
 * ```
 *
 * Exit codes: 0 built, 1 a step failed (one line says which), 2 bad flags.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createHash } from "node:crypto";
import { dirname, join, resolve } from "node:path";
import {
  bundlePath,
  RELEASE_DENO_VERSION,
  RELEASE_PERMISSIONS,
  RELEASE_PROGRAMS,
  type ReleaseManifest,
  type ReleaseProgram,
} from "../lib/release/layout.ts";
import { fileDigest } from "../lib/release/shipping.ts";

/** The npm package holding the Deno runtime, and its pinned integrity. */
export const RUNTIME_PACKAGE = {
  name: "@deno/linux-x64-glibc",
  version: RELEASE_DENO_VERSION,
  integrity:
    "sha512-3md4TKLCuzsLDmfOoC5KN7NAZaxSVkMgm64vg6foD00JBADCpYS2/5QqXfzgnP5ZQz3iLP9vBQJtEgc116OAoQ==",
  tarball: `deno-linux-x64-glibc-${RELEASE_DENO_VERSION}.tgz`,
};

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");

/** A step that failed; its message is the one line printed. */
class StepError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StepError";
  }
}

async function run(
  what: string,
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, {
      args,
      cwd: options.cwd ?? ROOT,
      stdout: "piped",
      stderr: "piped",
      ...(options.env ? { env: options.env } : {}),
    }).output();
  } catch (error) {
    throw new StepError(`Cannot ${what}: cannot run ${cmd}: ${(error as Error).message}`);
  }
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" | ");
    throw new StepError(`Cannot ${what}: ${cmd} exited with ${out.code}: ${err}`);
  }
  return text;
}

/** The directory where fetched runtimes are kept between builds. */
export function cacheDir(): string {
  const env = Deno.env.toObject();
  if (env.MRR_RELEASE_CACHE) return env.MRR_RELEASE_CACHE;
  const base = env.XDG_CACHE_HOME || join(env.HOME || "/tmp", ".cache");
  return join(base, "mr-redis", "release");
}

async function integrityOf(path: string): Promise<string> {
  const hash = createHash("sha512");
  using file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk);
  return `sha512-${hash.digest("base64")}`;
}

/** The runtime package tarball in the cache, fetched through npm when missing. */
async function runtimeTarball(log: (line: string) => void): Promise<string> {
  const dir = cacheDir();
  await Deno.mkdir(dir, { recursive: true });
  const path = join(dir, RUNTIME_PACKAGE.tarball);
  const ok = async () => {
    try {
      return await integrityOf(path) === RUNTIME_PACKAGE.integrity;
    } catch {
      return false;
    }
  };
  if (await ok()) return path;
  log(`Fetching ${RUNTIME_PACKAGE.name}@${RUNTIME_PACKAGE.version} with npm pack into ${dir}`);
  const staging = await Deno.makeTempDir({ dir, prefix: "npm-pack-" });
  try {
    await run(
      `fetch the Deno runtime (${RUNTIME_PACKAGE.name}@${RUNTIME_PACKAGE.version}) through npm`,
      "npm",
      [
        "pack",
        `${RUNTIME_PACKAGE.name}@${RUNTIME_PACKAGE.version}`,
        "--pack-destination",
        staging,
        "--prefer-offline",
        "--silent",
      ],
      { cwd: staging },
    );
    await Deno.rename(join(staging, RUNTIME_PACKAGE.tarball), path);
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
  if (!(await ok())) {
    await Deno.remove(path).catch(() => {});
    throw new StepError(
      `Cannot use ${RUNTIME_PACKAGE.tarball}: its integrity is not the pinned ${RUNTIME_PACKAGE.integrity}`,
    );
  }
  return path;
}

/**
 * The unpacked runtime (the file sched ships to agents as it is), made once
 * per Deno version in the cache directory.
 */
async function runtimeFile(tarball: string): Promise<string> {
  const dir = join(cacheDir(), `deno-${RELEASE_DENO_VERSION}`);
  const deno = join(dir, "runtime", "deno");
  try {
    if ((await Deno.stat(deno)).isFile) return deno;
  } catch {
    // made below
  }
  const staging = await Deno.makeTempDir({ dir: cacheDir(), prefix: "runtime-" });
  try {
    await Deno.mkdir(join(staging, "runtime"));
    await run("unpack the Deno runtime", "tar", [
      "-xzf",
      tarball,
      "-C",
      join(staging, "runtime"),
      "--strip-components=1",
      "package/deno",
    ]);
    await Deno.chmod(join(staging, "runtime", "deno"), 0o755);
    const reported = await run(
      "run the Deno runtime",
      join(staging, "runtime", "deno"),
      ["--version"],
      { env: { DENO_NO_UPDATE_CHECK: "1" } },
    );
    if (!reported.startsWith(`deno ${RELEASE_DENO_VERSION} `)) {
      throw new StepError(
        `Cannot use the runtime: it reports "${
          reported.split("\n")[0]
        }", not deno ${RELEASE_DENO_VERSION}`,
      );
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.rename(staging, dir);
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
  return deno;
}

/** Hard-links `from` to `to` (same file system), else copies it. */
async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await Deno.link(from, to);
  } catch {
    await Deno.copyFile(from, to);
  }
  const { mode } = await Deno.stat(from);
  if (mode !== null) await Deno.chmod(to, mode & 0o777);
}

/** The npm cache directory of this Deno, where `etcd3`'s `.proto` files are. */
async function etcdProtoDir(): Promise<string> {
  const info = JSON.parse(await run("locate the npm cache", Deno.execPath(), ["info", "--json"]));
  const npmCache: string = info.npmCache;
  const denoJson = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const spec: string = denoJson.imports?.etcd3 ?? "";
  const version = /^npm:etcd3@(.+)$/.exec(spec)?.[1];
  if (!version) throw new StepError(`Cannot find the etcd3 version in deno.json (got "${spec}")`);
  for await (const registry of Deno.readDir(npmCache)) {
    const dir = join(npmCache, registry.name, "etcd3", version, "proto");
    try {
      if ((await Deno.stat(join(dir, "rpc.proto"))).isFile) return dir;
    } catch {
      // another registry
    }
  }
  throw new StepError(
    `Cannot find etcd3@${version}'s proto files under ${npmCache}; run "deno install" first`,
  );
}

/**
 * Bundles `cmd/<entry>.ts`. The etcd client reads its `.proto` files at run
 * time from `__dirname`, which a bundle does not have: that one read is
 * pointed at `lib/etcd3/proto/` of the release.
 */
async function bundle(program: ReleaseProgram, out: string): Promise<void> {
  const entry = `cmd/${RELEASE_PROGRAMS[program]}.ts`;
  const target = bundlePath(out, program);
  await run(`bundle ${entry}`, Deno.execPath(), [
    "bundle",
    "--quiet",
    "--platform",
    "deno",
    "-o",
    target,
    entry,
  ]);
  let text = await Deno.readTextFile(target);
  const etcdRead = "`${__dirname}/../proto/rpc.proto`";
  const count = text.split(etcdRead).length - 1;
  if (program === "sched" && count !== 1) {
    throw new StepError(
      `Cannot bundle ${entry}: expected the etcd client to read ${etcdRead} once, found ${count}`,
    );
  }
  if (count > 0) {
    text = text.replaceAll(etcdRead, "`${import.meta.dirname}/etcd3/proto/rpc.proto`");
  }
  await Deno.writeTextFile(
    target,
    `// ${program} of mr-redis, bundled by tools/release.ts; run it with ./${program}\n${text}`,
  );
}

/** The shell launcher of `program`. */
export function launcher(program: ReleaseProgram): string {
  const flags = ["--no-config", "--no-lock", ...RELEASE_PERMISSIONS[program]].join(" ");
  return [
    "#!/bin/sh",
    `# ${program} of mr-redis: runs lib/${
      RELEASE_PROGRAMS[program]
    }.js with the Deno runtime of this release.`,
    'here=$(dirname "$(readlink -f "$0")")',
    "export DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1",
    `exec "$here/runtime/deno" run ${flags} "$here/lib/${RELEASE_PROGRAMS[program]}.js" "$@"`,
    "",
  ].join("\n");
}

/** Options of {@linkcode buildRelease}. */
export interface BuildOptions {
  /** The release directory (default `dist/mr-redis-<version>-linux-x64`). */
  out?: string;
  /** Also write `<out>.tar.gz` (default true). */
  tarball?: boolean;
  log?: (line: string) => void;
}

/** Builds a release; returns its directory. */
export async function buildRelease(options: BuildOptions = {}): Promise<string> {
  const log = options.log ?? ((line: string) => console.error(line));
  const denoJson = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const version: string = denoJson.version;
  const name = `mr-redis-${version}-linux-x64`;
  const out = resolve(options.out ?? join(ROOT, "dist", name));
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    throw new StepError(
      `Cannot build a linux-x64 release on ${Deno.build.os}-${Deno.build.arch}: the runtime is x86_64 Linux (glibc)`,
    );
  }
  await Deno.remove(out, { recursive: true }).catch(() => {});
  await Deno.mkdir(join(out, "lib", "etcd3", "proto"), { recursive: true });
  await Deno.mkdir(join(out, "runtime"), { recursive: true });

  const tarball = await runtimeTarball(log);
  log(`Bundling ${Object.values(RELEASE_PROGRAMS).map((e) => `cmd/${e}.ts`).join(", ")}`);
  for (const program of Object.keys(RELEASE_PROGRAMS) as ReleaseProgram[]) {
    await bundle(program, out);
    await Deno.writeTextFile(join(out, program), launcher(program), { mode: 0o755 });
    await Deno.chmod(join(out, program), 0o755);
  }
  const protos = await etcdProtoDir();
  for await (const entry of Deno.readDir(protos)) {
    if (entry.isFile && entry.name.endsWith(".proto")) {
      await Deno.copyFile(join(protos, entry.name), join(out, "lib", "etcd3", "proto", entry.name));
    }
  }

  // The runtime: runtime/deno, for the release's programs and for agents.
  const runtime = await runtimeFile(tarball);
  await linkOrCopy(runtime, join(out, "runtime", "deno"));

  const manifest: ReleaseManifest = {
    name: "mr-redis",
    version,
    deno: RELEASE_DENO_VERSION,
    platform: "linux-x64",
    runtimeDigest: await fileDigest(runtime),
  };
  await Deno.writeTextFile(join(out, "release.json"), JSON.stringify(manifest, null, 2) + "\n");

  if (options.tarball !== false) {
    log(`Writing ${out}.tar.gz`);
    await run("write the release archive", "sh", [
      "-c",
      `tar --sort=name --owner=0 --group=0 --numeric-owner -cf - ${shq(name)} | gzip -6 > ${
        shq(`${out}.tar.gz`)
      }`,
    ], { cwd: dirname(out) });
  }
  return out;
}

function shq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** `deno task release [--out DIR] [--no-tarball]`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        out: { type: "string" },
        "no-tarball": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    console.error(
      `${(error as Error).message}; usage: deno task release [--out DIR] [--no-tarball]`,
    );
    return 2;
  }
  if (values.help) {
    console.log("Usage: deno task release [--out DIR] [--no-tarball]");
    return 0;
  }
  try {
    const started = performance.now();
    const out = await buildRelease({
      ...(values.out ? { out: values.out } : {}),
      tarball: !values["no-tarball"],
    });
    console.error(`Built ${out} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    console.log(out);
    return 0;
  } catch (error) {
    if (error instanceof StepError) {
      console.error(error.message);
      return 1;
    }
    throw error;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
