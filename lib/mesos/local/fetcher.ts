/**
 * The Mesos fetcher of the local cluster: downloads `CommandInfo.uris` into
 * a sandbox before the executor starts. Supports http(s), `file://` and
 * absolute local paths; honours `executable` (chmod, no extraction),
 * `output_file`, `extract` (archives through the system `tar`, zip through
 * `unzip`, a lone `.gz` through `gunzip`, as the Mesos fetcher does) and
 * `cache`: with a {@linkcode FetcherCache}, a URI marked `cache` is
 * downloaded once per agent (and user) and copied from the cache into each
 * sandbox afterwards; the cache drops its least recently used files past its
 * size limit (Mesos `--fetcher_cache_size`, 2 GB).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { basename, isAbsolute, join, normalize, resolve } from "node:path";
import type { CommandUri } from "./messages.ts";
import { Http1Client } from "../http1_client.ts";

/** Thrown when a URI cannot be fetched; the message names the URI. */
export class FetchError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FetchError";
  }
}

const ARCHIVE = /\.(tar|tar\.gz|tgz|tar\.bz2|tbz2|tar\.xz|txz|zip|gz)$/;

/**
 * Copies a URI's content to a file: the default is {@linkcode downloadTo} in
 * this process; an agent that is a host of its own downloads from its host.
 */
export type Downloader = (value: string, target: string) => Promise<void>;

/** The agent's fetcher cache: one downloaded copy per cached URI. */
export class FetcherCache {
  readonly #dir: string;
  readonly #maxBytes: number;
  readonly #download: Downloader;
  readonly #entries = new Map<string, { path: string; size: number; used: number }>();
  readonly #inFlight = new Map<string, Promise<string>>();
  #downloads = 0;

  /** A cache in `dir` holding at most `maxBytes` (default 2 GiB, as Mesos), downloading with `download`. */
  constructor(dir: string, maxBytes = 2 * 1024 ** 3, download: Downloader = downloadTo) {
    this.#dir = dir;
    this.#maxBytes = maxBytes;
    this.#download = download;
  }

  /** How many downloads the cache made (a hit makes none). */
  get downloads(): number {
    return this.#downloads;
  }

  /** The cached copy of `uri` for `user`, downloading it on the first use. */
  get(uri: CommandUri, user: string): Promise<string> {
    const key = createHash("sha256").update(`${user}\0${uri.value}`).digest("hex").slice(0, 32);
    const entry = this.#entries.get(key);
    if (entry) {
      entry.used = performance.now();
      return Promise.resolve(entry.path);
    }
    let pending = this.#inFlight.get(key);
    if (!pending) {
      pending = this.#fetch(key, uri).finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, pending);
    }
    return pending;
  }

  async #fetch(key: string, uri: CommandUri): Promise<string> {
    await Deno.mkdir(this.#dir, { recursive: true });
    const path = join(this.#dir, `${key}-${targetName({ value: uri.value })}`);
    const partial = `${path}.partial`;
    await this.#download(uri.value, partial);
    await Deno.rename(partial, path);
    this.#downloads++;
    const { size } = await Deno.stat(path);
    this.#entries.set(key, { path, size, used: performance.now() });
    await this.#evict(key);
    return path;
  }

  /** Drops the least recently used files until the cache fits (never `keep`). */
  async #evict(keep: string): Promise<void> {
    let total = 0;
    for (const entry of this.#entries.values()) total += entry.size;
    const byAge = [...this.#entries.entries()].filter(([k]) => k !== keep)
      .sort((a, b) => a[1].used - b[1].used);
    for (const [key, entry] of byAge) {
      if (total <= this.#maxBytes) break;
      this.#entries.delete(key);
      total -= entry.size;
      await Deno.remove(entry.path).catch(() => {});
    }
  }
}

function targetName(uri: CommandUri): string {
  if (uri.output_file !== undefined && uri.output_file !== "") {
    const rel = normalize(uri.output_file);
    if (isAbsolute(rel) || rel.startsWith("..")) {
      throw new FetchError(
        `Cannot fetch "${uri.value}": output_file "${uri.output_file}" leaves the sandbox`,
      );
    }
    return rel;
  }
  let path = uri.value;
  try {
    path = new URL(uri.value).pathname;
  } catch {
    // a plain path
  }
  const name = basename(path);
  if (name === "" || name === "." || name === "..") {
    throw new FetchError(`Cannot fetch "${uri.value}": it names no file`);
  }
  return name;
}

async function run(cmd: string, args: string[], cwd: string, uri: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new FetchError(
      `Cannot extract "${uri}": ${cmd} failed: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
}

/**
 * Copies `value` (http(s), `file://` or an absolute path) to the file
 * `target`; throws {@linkcode FetchError} with one line.
 */
export async function downloadTo(value: string, target: string): Promise<void> {
  if (/^http:\/\//i.test(value) && await downloadPlainHttp(value, target)) return;
  if (/^https?:\/\//i.test(value)) {
    let response: Response;
    try {
      response = await fetch(value);
    } catch (error) {
      throw new FetchError(`Cannot fetch "${value}": ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw new FetchError(`Cannot fetch "${value}": HTTP ${response.status}`);
    }
    try {
      await Deno.writeFile(target, response.body);
    } catch (error) {
      throw new FetchError(`Cannot fetch "${value}": ${(error as Error).message}`, {
        cause: error,
      });
    }
    return;
  }
  let source = value;
  if (source.startsWith("file://")) source = new URL(source).pathname;
  if (!isAbsolute(source)) {
    throw new FetchError(
      `Cannot fetch "${value}": only http(s), file:// and absolute paths are supported`,
    );
  }
  try {
    await Deno.copyFile(source, target);
  } catch (error) {
    throw new FetchError(`Cannot fetch "${value}": ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * Downloads a plain `http://` URI with the small HTTP/1.1 client (one GET
 * on a connection of its own, the body streamed to `target`); false when
 * the answer is a redirect or a compressed body, which `fetch` handles.
 * What an executor launch fetches is a file or two from the scheduler's
 * artifact server: `fetch` would cost the agent its loading and a request,
 * headers, signals and body streams per file.
 */
async function downloadPlainHttp(value: string, target: string): Promise<boolean> {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.username !== "" || url.password !== "") return false;
  let client: Http1Client;
  try {
    client = new Http1Client(`${url.hostname}:${url.port || "80"}`);
  } catch {
    return false;
  }
  try {
    const answer = await client.stream(
      "GET",
      `${url.pathname}${url.search}`,
      { Accept: "*/*" },
      new Uint8Array(),
    );
    try {
      const encoding = (answer.headers.get("content-encoding") ?? "identity").toLowerCase();
      if ((answer.status >= 300 && answer.status < 400) || encoding !== "identity") return false;
      if (answer.status < 200 || answer.status >= 300) {
        throw new FetchError(`Cannot fetch "${value}": HTTP ${answer.status}`);
      }
      const file = await Deno.open(target, { write: true, create: true, truncate: true });
      try {
        for await (const piece of answer.body) {
          for (let at = 0; at < piece.length;) at += await file.write(piece.subarray(at));
        }
      } finally {
        file.close();
      }
      return true;
    } finally {
      answer.close();
    }
  } catch (error) {
    if (error instanceof FetchError) throw error;
    throw new FetchError(`Cannot fetch "${value}": ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    client.close();
  }
}

/** Where and as whom a fetch happens. */
export interface FetchContext {
  /** The agent's cache, for URIs marked `cache`. */
  cache?: FetcherCache;
  /** The user the executor runs as (part of the cache key, as in Mesos). */
  user?: string;
  /** How URIs not taken from the cache are downloaded (default {@linkcode downloadTo}). */
  download?: Downloader;
}

/** Fetches one URI into `sandbox`; returns the path written. */
export async function fetchUri(
  uri: CommandUri,
  sandbox: string,
  context: FetchContext = {},
): Promise<string> {
  const target = resolve(sandbox, targetName(uri));
  await Deno.mkdir(join(target, ".."), { recursive: true });
  if (uri.cache && context.cache) {
    const cached = await context.cache.get(uri, context.user ?? "");
    try {
      await Deno.copyFile(cached, target);
    } catch (error) {
      throw new FetchError(
        `Cannot fetch "${uri.value}" from the cache: ${(error as Error).message}`,
      );
    }
  } else {
    await (context.download ?? downloadTo)(uri.value, target);
  }
  if (uri.executable) {
    await Deno.chmod(target, 0o755);
  } else if (uri.extract !== false && ARCHIVE.test(target)) {
    if (target.endsWith(".zip")) await run("unzip", ["-o", "-q", target], sandbox, uri.value);
    else if (/\.tar(\.\w+)?$|\.t[gbx]z2?$/.test(target)) {
      await run("tar", ["-xf", target], sandbox, uri.value);
    } else await run("gunzip", ["-f", "-k", target], sandbox, uri.value);
  }
  return target;
}

/** Fetches every URI in order; the first failure throws {@link FetchError}. */
export async function fetchUris(
  uris: CommandUri[],
  sandbox: string,
  context: FetchContext = {},
): Promise<void> {
  for (const uri of uris) await fetchUri(uri, sandbox, context);
}
