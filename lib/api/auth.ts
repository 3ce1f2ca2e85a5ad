/**
 * Who may call the REST API: bearer tokens (`APIToken`, or `APITokenFile`
 * with one `name:token` a line), the refusal of cross-site changes, and the
 * rule that an API reachable from other hosts needs a token.
 *
 * {@linkcode guardApi} wraps a fetch handler: the UI's static files and
 * `GET /v1/HEALTH` stay open; every other request needs
 * `Authorization: Bearer <token>` once tokens are configured (401 otherwise);
 * a request that changes something (any method but GET, HEAD, OPTIONS) whose
 * `Origin` or `Sec-Fetch-Site` says it comes from another site gets 403
 * whatever its token.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { ConfigError } from "../config.ts";
import { isUiPath } from "../ui/serve.ts";

/** Shortest token accepted, characters. */
export const MIN_TOKEN_LENGTH = 16;

/** The client name of the token given as `APIToken`. */
export const DEFAULT_TOKEN_NAME = "default";

/** What the guard tells the handler about the caller. */
export interface RequestContext {
  /** The client's address (`ip:port`), when known. */
  client?: string;
  /** Name of the token the request carried; absent when no tokens are configured. */
  principal?: string;
}

/** A fetch handler that also takes the caller's {@linkcode RequestContext}. */
export type ContextHandler = (
  req: Request,
  ctx: RequestContext,
) => Response | Promise<Response>;

function hash(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

function checkToken(token: string, where: string): void {
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw new ConfigError(
      `${where}: a token must be at least ${MIN_TOKEN_LENGTH} characters with no spaces, but got one of ${token.length} characters`,
    );
  }
}

/**
 * Parses a token file: one `name:token` a line; blank lines and lines
 * starting with `#` are skipped. Returns the names by token. Throws
 * {@linkcode ConfigError} naming the line (never showing a token).
 */
export function parseTokenFile(text: string, where: string): Map<string, string> {
  const tokens = new Map<string, string>();
  const names = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const at = `${where} line ${i + 1}`;
    const colon = line.indexOf(":");
    const name = colon < 0 ? "" : line.slice(0, colon).trim();
    if (!/^[A-Za-z0-9_.@-]{1,64}$/.test(name)) {
      throw new ConfigError(
        `${at}: must be "name:token" with a name of 1 to 64 letters, digits, "_", ".", "@" or "-"`,
      );
    }
    const token = line.slice(colon + 1).trim();
    checkToken(token, at);
    if (names.has(name)) throw new ConfigError(`${at}: the name "${name}" appears twice`);
    if (tokens.has(token)) throw new ConfigError(`${at}: the same token is given twice`);
    names.add(name);
    tokens.set(token, name);
  });
  return tokens;
}

/** Options of {@linkcode ApiTokens.load}. */
export interface ApiTokensOptions {
  /** The `APIToken` config field ("" for none). */
  token?: string;
  /** The `APITokenFile` config field ("" for none). */
  file?: string;
  /** Receives a line when a changed token file cannot be read (the previous tokens stay). */
  log?: (line: string) => void;
}

/**
 * The configured tokens. A token file is read again when it changes
 * (checked at most once a second), so a client is added or revoked by
 * editing the file.
 */
export class ApiTokens {
  #byHash = new Map<string, string>();
  readonly #fixed = new Map<string, string>();
  readonly #file: string;
  readonly #log: (line: string) => void;
  #mtime = 0;
  #checkedAt = 0;

  private constructor(file: string, log: (line: string) => void) {
    this.#file = file;
    this.#log = log;
  }

  /** Reads the tokens; throws {@linkcode ConfigError} on a bad token or file. */
  static load(options: ApiTokensOptions): ApiTokens {
    const tokens = new ApiTokens(options.file ?? "", options.log ?? (() => {}));
    if (options.token) {
      checkToken(options.token, 'config field "APIToken"');
      tokens.#fixed.set(hash(options.token), DEFAULT_TOKEN_NAME);
      tokens.#byHash = new Map(tokens.#fixed);
    }
    if (tokens.#file) {
      const where = `APITokenFile "${tokens.#file}"`;
      let text: string;
      try {
        tokens.#mtime = Deno.statSync(tokens.#file).mtime?.getTime() ?? 0;
        text = Deno.readTextFileSync(tokens.#file);
      } catch (error) {
        const why = error instanceof Deno.errors.NotFound
          ? "no such file"
          : (error as Error).message;
        throw new ConfigError(`Cannot read ${where}: ${why}`);
      }
      tokens.#setFromFile(parseTokenFile(text, where));
      if (tokens.#byHash.size === tokens.#fixed.size) {
        throw new ConfigError(`${where} holds no "name:token" line`);
      }
    }
    tokens.#checkedAt = Date.now();
    return tokens;
  }

  #setFromFile(fromFile: Map<string, string>): void {
    const all = new Map(this.#fixed);
    for (const [token, name] of fromFile) all.set(hash(token), name);
    this.#byHash = all;
  }

  /** Whether any token is configured (else the API is open). */
  get enabled(): boolean {
    return this.#byHash.size > 0 || this.#file !== "";
  }

  /** Number of tokens now accepted. */
  get size(): number {
    return this.#byHash.size;
  }

  #reload(): void {
    const now = Date.now();
    if (!this.#file || now - this.#checkedAt < 1000) return;
    this.#checkedAt = now;
    const where = `APITokenFile "${this.#file}"`;
    try {
      const mtime = Deno.statSync(this.#file).mtime?.getTime() ?? 0;
      if (mtime === this.#mtime) return;
      this.#mtime = mtime;
      this.#setFromFile(parseTokenFile(Deno.readTextFileSync(this.#file), where));
      this.#log(`Read ${where} again: ${this.#byHash.size} token(s)`);
    } catch (error) {
      this.#log(
        `Cannot read ${where} again; keeping the previous tokens: ${(error as Error).message}`,
      );
    }
  }

  /** The name of the client holding `token`, or `undefined`. */
  nameOf(token: string): string | undefined {
    this.#reload();
    return this.#byHash.get(hash(token));
  }
}

/** Whether `host` is a loopback address (`127.0.0.0/8`, `::1`, `localhost`). */
export function isLoopbackAddress(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) ||
    /^::ffff:127\./.test(h);
}

/**
 * The one-line reason `sched` must not start with this API set-up, or
 * `undefined` when it may: a non-loopback `HTTPAddress` needs a token unless
 * `InsecureAPI` says otherwise.
 */
export function exposureProblem(
  config: { HTTPAddress: string; APIToken: string; APITokenFile: string; InsecureAPI: boolean },
): string | undefined {
  if (config.APIToken || config.APITokenFile || config.InsecureAPI) return undefined;
  if (isLoopbackAddress(config.HTTPAddress)) return undefined;
  return `Refusing to serve the REST API on HTTPAddress ${
    JSON.stringify(config.HTTPAddress || "0.0.0.0")
  } without authentication: set "APIToken" or "APITokenFile", or "HTTPAddress": "127.0.0.1", or "InsecureAPI": true to allow it anyway`;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Why a state-changing request looks cross-site, or `undefined`: an `Origin`
 * other than the request's own (`null` included), or a `Sec-Fetch-Site`
 * other than `same-origin` and `none`. Requests that do not change state are
 * never refused. The API's own origin is `{scheme}://{Host}` when `scheme`
 * is given (behind the guarded front), else the request URL's.
 */
export function crossSiteReason(req: Request, scheme?: string): string | undefined {
  if (SAFE_METHODS.has(req.method)) return undefined;
  const site = req.headers.get("sec-fetch-site");
  if (site !== null && site !== "same-origin" && site !== "none") {
    return `Cross-site request refused: Sec-Fetch-Site is "${site.slice(0, 40)}"`;
  }
  const origin = req.headers.get("origin");
  if (origin === null) return undefined;
  const own = scheme !== undefined
    ? `${scheme}://${req.headers.get("host") ?? ""}`
    : new URL(req.url).origin;
  if (origin !== own) {
    return `Cross-site request refused: Origin ${JSON.stringify(origin.slice(0, 200))} is not ${
      JSON.stringify(own.slice(0, 200))
    }`;
  }
  return undefined;
}

/** Whether a request is open to anyone: the UI's files and `GET /v1/HEALTH`. */
export function isPublicRequest(req: Request, pathname: string): boolean {
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  return isUiPath(pathname) || /^\/v1\/health\/?$/i.test(pathname);
}

function refuse(status: number, line: string, headers: Record<string, string> = {}): Response {
  return new Response(line + "\n", {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}

/** Options of {@linkcode guardApi}. */
export interface GuardOptions {
  /** The tokens; none configured (or absent) leaves the API open. */
  tokens?: ApiTokens;
}

/**
 * Wraps `handler` with the cross-site check (403) and, when tokens are
 * configured, the bearer-token check (401). The handler gets the caller's
 * address and token name.
 */
export function guardApi(
  handler: ContextHandler,
  options: GuardOptions = {},
): (
  req: Request,
  info?: { remoteAddr?: Deno.Addr; scheme?: string },
) => Response | Promise<Response> {
  const tokens = options.tokens?.enabled ? options.tokens : undefined;
  return (req, info) => {
    const addr = info?.remoteAddr as Deno.NetAddr | undefined;
    const ctx: RequestContext = addr?.hostname !== undefined
      ? { client: `${addr.hostname}:${addr.port}` }
      : {};
    const crossSite = crossSiteReason(req, info?.scheme);
    if (crossSite) return refuse(403, crossSite);
    if (!tokens) return handler(req, ctx);
    const pathname = new URL(req.url).pathname;
    if (isPublicRequest(req, pathname)) return handler(req, ctx);
    const header = req.headers.get("authorization") ?? "";
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    const name = m ? tokens.nameOf(m[1]!) : undefined;
    if (name === undefined) {
      return refuse(
        401,
        header === ""
          ? 'Authentication required: send "Authorization: Bearer <token>"'
          : "Authentication failed: the API token is not valid",
        { "www-authenticate": 'Bearer realm="mr-redis"' },
      );
    }
    return handler(req, { ...ctx, principal: name });
  };
}
