/**
 * HTTP authentication of the local cluster, as Mesos does it when started
 * with `--authenticate_http_frameworks` (HTTP Basic with a credentials file)
 * and `--authenticate_http_executors` (a bearer token per executor, handed
 * to it in `MESOS_EXECUTOR_AUTHENTICATION_TOKEN`).
 *
 * @module
 */
import type { LocalResponse, RequestHeaders } from "./http_server.ts";

/** One framework credential. */
export interface Credential {
  principal: string;
  secret: string;
}

/** 401 with the challenge Mesos sends. */
export function unauthorized(scheme: "Basic" | "Bearer", message: string): LocalResponse {
  return {
    status: 401,
    headers: {
      "WWW-Authenticate": `${scheme} realm="mesos"`,
      "Content-Type": "text/plain; charset=utf-8",
    },
    body: message,
  };
}

/**
 * The principal a request authenticates as with HTTP Basic against
 * `credentials`, or `undefined` when the header is missing or wrong.
 */
export function basicPrincipal(
  request: { headers: RequestHeaders },
  credentials: readonly Credential[],
): string | undefined {
  const header = request.headers.get("Authorization") ?? "";
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) return undefined;
  let text: string;
  try {
    text = new TextDecoder().decode(Uint8Array.from(atob(m[1]!), (c) => c.charCodeAt(0)));
  } catch {
    return undefined;
  }
  const colon = text.indexOf(":");
  if (colon < 0) return undefined;
  const principal = text.slice(0, colon);
  const secret = text.slice(colon + 1);
  return credentials.some((c) => c.principal === principal && c.secret === secret)
    ? principal
    : undefined;
}

/** The bearer token of a request, or `undefined`. */
export function bearerToken(request: { headers: RequestHeaders }): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("Authorization") ?? "");
  return m?.[1];
}

/**
 * Parses a Mesos credentials file: JSON `{"credentials": [{"principal",
 * "secret"}]}`, or text lines `principal secret`. Throws a `TypeError`
 * naming the file and the line.
 */
export function parseCredentials(text: string, where: string): Credential[] {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    let raw: unknown;
    try {
      raw = JSON.parse(trimmed);
    } catch (error) {
      throw new TypeError(`${where}: not valid JSON (${(error as Error).message})`);
    }
    const list = (raw as { credentials?: unknown }).credentials;
    if (!Array.isArray(list)) {
      throw new TypeError(`${where}: must hold {"credentials": [{"principal", "secret"}]}`);
    }
    return list.map((c, i) => {
      if (typeof c?.principal !== "string" || c.principal === "" || typeof c.secret !== "string") {
        throw new TypeError(`${where}: credential ${i + 1} needs a "principal" and a "secret"`);
      }
      return { principal: c.principal, secret: c.secret };
    });
  }
  const out: Credential[] = [];
  trimmed.split("\n").forEach((line, i) => {
    const t = line.trim();
    if (t === "" || t.startsWith("#")) return;
    const m = /^(\S+)\s+(\S+)$/.exec(t);
    if (!m) throw new TypeError(`${where}: line ${i + 1} must be "principal secret"`);
    out.push({ principal: m[1]!, secret: m[2]! });
  });
  if (out.length === 0) throw new TypeError(`${where}: holds no credential`);
  return out;
}
