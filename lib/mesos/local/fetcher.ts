/**
 * The Mesos fetcher of the local cluster: downloads `CommandInfo.uris` into
 * a sandbox before the executor starts. Supports http(s), `file://` and
 * absolute local paths; honours `executable`, `output_file` and `extract`
 * (tar archives through the system `tar`, zip through `unzip`).
 *
 * @module
 */

import { basename, isAbsolute, join, normalize } from "node:path";
import type { CommandUri } from "./messages.ts";

/** Thrown when a URI cannot be fetched; the message names the URI. */
export class FetchError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FetchError";
  }
}

const ARCHIVE = /\.(tar|tar\.gz|tgz|tar\.bz2|tbz2|tar\.xz|txz|zip)$/;

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

/** Fetches one URI into `sandbox`; returns the path written. */
export async function fetchUri(uri: CommandUri, sandbox: string): Promise<string> {
  const target = join(sandbox, targetName(uri));
  await Deno.mkdir(join(target, ".."), { recursive: true });
  if (/^https?:\/\//i.test(uri.value)) {
    let response: Response;
    try {
      response = await fetch(uri.value);
    } catch (error) {
      throw new FetchError(`Cannot fetch "${uri.value}": ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new FetchError(`Cannot fetch "${uri.value}": HTTP ${response.status}`);
    }
    await Deno.writeFile(target, new Uint8Array(await response.arrayBuffer()));
  } else {
    let source = uri.value;
    if (source.startsWith("file://")) source = new URL(source).pathname;
    if (!isAbsolute(source)) {
      throw new FetchError(
        `Cannot fetch "${uri.value}": only http(s), file:// and absolute paths are supported`,
      );
    }
    try {
      await Deno.copyFile(source, target);
    } catch (error) {
      throw new FetchError(`Cannot fetch "${uri.value}": ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  if (uri.executable) {
    await Deno.chmod(target, 0o755);
  } else if (uri.extract !== false && ARCHIVE.test(target)) {
    if (target.endsWith(".zip")) await run("unzip", ["-o", "-q", target], sandbox, uri.value);
    else await run("tar", ["-xf", target], sandbox, uri.value);
  }
  return target;
}

/** Fetches every URI in order; the first failure throws {@link FetchError}. */
export async function fetchUris(uris: CommandUri[], sandbox: string): Promise<void> {
  for (const uri of uris) await fetchUri(uri, sandbox);
}
