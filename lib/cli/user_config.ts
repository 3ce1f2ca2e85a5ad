/**
 * Where `mrr` keeps the scheduler endpoint: a small per-user JSON file
 * (`{"endpoint": "http://host:5656"}`).
 *
 * The file is `$MRR_CONFIG` when set, else `$XDG_CONFIG_HOME/mrr/config.json`,
 * else `~/.mrr/config.json`. The `MRR_ENDPOINT` variable overrides the saved
 * endpoint, `MRR_TOKEN` the saved API token. A file holding a token is
 * written readable by its owner only (mode 0600).
 *
 * @module
 */

import { CommandError, UsageError } from "./errors.ts";

/** Reads an environment variable; tests pass their own. */
export type Env = (name: string) => string | undefined;

/** The contents of the config file. */
export interface UserConfig {
  /** The scheduler's base URL, e.g. `http://10.0.0.1:5656`. */
  endpoint: string;
  /** The API token sent as `Authorization: Bearer`, when the scheduler needs one. */
  token?: string;
}

/** The hint shown whenever an endpoint is missing or wrong. */
export const INIT_HINT = 'Run "mrr init http://HOST:5656" with the address of the scheduler';

/** Returns the path of the config file for the environment `env`. */
export function configPath(env: Env): string {
  const explicit = env("MRR_CONFIG");
  if (explicit) return explicit;
  const xdg = env("XDG_CONFIG_HOME");
  if (xdg) return `${xdg}/mrr/config.json`;
  const home = env("HOME") ?? env("USERPROFILE");
  if (!home) {
    throw new UsageError(
      "Cannot find a place for the mrr config file: HOME is not set",
      "Set MRR_CONFIG to the path of a file mrr may write",
    );
  }
  return `${home}/.mrr/config.json`;
}

/**
 * Checks that `text` is an http:// or https:// URL and returns it normalized
 * (no trailing slash); `HOST:PORT` without a scheme is taken as `http://`. `source` says where it came from, for the message.
 * Throws {@linkcode UsageError}.
 */
export function parseEndpoint(text: string, source: string, hint: string): string {
  let url: URL | undefined;
  try {
    // "host:port" (no scheme) means http://host:port.
    url = new URL(
      /^[a-z][a-z0-9+.-]*:\/\//i.test(text.trim()) ? text.trim() : `http://${text.trim()}`,
    );
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || !url.hostname) {
    throw new UsageError(
      `${source} must be an http:// or https:// URL such as http://10.0.0.1:5656, but got "${text}"`,
      hint,
    );
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new UsageError(
      `${source} must not carry a query, fragment or credentials, but got "${text}"`,
      hint,
    );
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

/** Reads the config file; returns undefined when it does not exist. */
export async function loadUserConfig(path: string): Promise<UserConfig | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new CommandError(
      `Cannot read the mrr config file "${path}": ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new UsageError(
      `The mrr config file "${path}" is not valid JSON`,
      `${INIT_HINT} to write it again`,
      { cause: error },
    );
  }
  const endpoint = (data as { endpoint?: unknown } | null)?.endpoint;
  if (typeof endpoint !== "string") {
    throw new UsageError(
      `The mrr config file "${path}" has no "endpoint" string`,
      `${INIT_HINT} to write it again`,
    );
  }
  const token = (data as { token?: unknown }).token;
  if (token !== undefined && typeof token !== "string") {
    throw new UsageError(
      `The mrr config file "${path}" has a "token" that is not a string`,
      `${INIT_HINT} to write it again`,
    );
  }
  return token ? { endpoint, token } : { endpoint };
}

/** Writes the config file, creating its folder. */
export async function saveUserConfig(path: string, config: UserConfig): Promise<void> {
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  try {
    if (slash > 0) await Deno.mkdir(path.slice(0, slash), { recursive: true });
    const text = JSON.stringify(config, null, 2) + "\n";
    if (config.token) {
      // Owner only, also when the file existed with wider permissions.
      await Deno.writeTextFile(path, "", { mode: 0o600 });
      await Deno.chmod(path, 0o600).catch(() => {});
    }
    await Deno.writeTextFile(path, text, config.token ? { mode: 0o600 } : {});
  } catch (error) {
    throw new CommandError(
      `Cannot write the mrr config file "${path}": ${(error as Error).message}`,
      { hint: "Set MRR_CONFIG to the path of a file mrr may write", cause: error },
    );
  }
}

/**
 * Returns the endpoint to use: `MRR_ENDPOINT` when set, else the saved one.
 * Throws {@linkcode UsageError} when there is none or it is not a valid URL.
 */
export async function resolveEndpoint(env: Env): Promise<string> {
  const fromEnv = env("MRR_ENDPOINT");
  if (fromEnv) return parseEndpoint(fromEnv, "MRR_ENDPOINT", "Fix or unset MRR_ENDPOINT");
  const path = configPath(env);
  const config = await loadUserConfig(path);
  if (!config) {
    throw new UsageError(
      "No scheduler endpoint is configured",
      `${INIT_HINT} (or set MRR_ENDPOINT)`,
    );
  }
  return parseEndpoint(config.endpoint, `The endpoint in "${path}"`, INIT_HINT);
}

/**
 * Returns the API token to send: `MRR_TOKEN` when set, else the saved one,
 * else `undefined` (the scheduler needs none).
 */
export async function resolveToken(env: Env): Promise<string | undefined> {
  const fromEnv = env("MRR_TOKEN");
  if (fromEnv) return fromEnv;
  if (env("MRR_ENDPOINT")) {
    // The saved token belongs to the saved endpoint, not to another scheduler.
    const saved = await loadUserConfig(configPath(env)).catch(() => undefined);
    return saved && saved.endpoint === parseEndpoint(env("MRR_ENDPOINT")!, "MRR_ENDPOINT", "")
      ? saved.token
      : undefined;
  }
  return (await loadUserConfig(configPath(env)))?.token;
}
