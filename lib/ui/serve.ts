/**
 * Serves the web UI: the page at `/` and `/ui`, its files under `/ui/`. The
 * files are imported as text, so `deno compile` embeds them and the binary
 * needs no source tree.
 *
 * Every answer is same-origin only (no CORS headers), `no-cache`, and carries
 * a strict Content-Security-Policy: the page loads nothing but its own files
 * and talks to nothing but its own origin.
 *
 * @module
 */
import html from "./index.html" with { type: "text" };
import appJs from "./app.js" with { type: "text" };
import viewJs from "./view.js" with { type: "text" };
import opsJs from "./ops.js" with { type: "text" };
import styleCss from "./style.css" with { type: "text" };

/** The Content-Security-Policy sent with every UI answer. */
export const UI_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const HTML = "text/html; charset=utf-8";
const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

/** The UI files by path, with their content types. */
export const UI_ASSETS: ReadonlyMap<string, { body: string; type: string }> = new Map([
  ["/", { body: html, type: HTML }],
  ["/ui", { body: html, type: HTML }],
  ["/ui/", { body: html, type: HTML }],
  ["/ui/index.html", { body: html, type: HTML }],
  ["/ui/app.js", { body: appJs, type: JS }],
  ["/ui/view.js", { body: viewJs, type: JS }],
  ["/ui/ops.js", { body: opsJs, type: JS }],
  ["/ui/style.css", { body: styleCss, type: CSS }],
]);

function headers(type: string): Record<string, string> {
  return {
    "content-type": type,
    "cache-control": "no-cache",
    "content-security-policy": UI_CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
  };
}

function plain(status: number, body: string, extra: Record<string, string> = {}): Response {
  return new Response(body + "\n", {
    status,
    headers: { ...headers("text/plain; charset=utf-8"), ...extra },
  });
}

/**
 * Whether `pathname` belongs to the UI: `/`, `/ui`, or anything under `/ui/`.
 */
export function isUiPath(pathname: string): boolean {
  return pathname === "/" || pathname === "/ui" || pathname.startsWith("/ui/");
}

/**
 * Answers a UI request: the file for GET and HEAD, 404 for an unknown file
 * under `/ui/`, 405 for other methods. Call it only when
 * {@linkcode isUiPath} holds.
 */
export function serveUi(req: Request, pathname: string): Response {
  const asset = UI_ASSETS.get(pathname);
  if (!asset) return plain(404, `No such UI file: ${pathname}`);
  if (req.method !== "GET" && req.method !== "HEAD") {
    return plain(405, `Method ${req.method} is not allowed on ${pathname}; use GET`, {
      allow: "GET, HEAD",
    });
  }
  return new Response(req.method === "HEAD" ? null : asset.body, {
    status: 200,
    headers: headers(asset.type),
  });
}
