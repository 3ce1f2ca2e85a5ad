/**
 * The web UI served by `sched` beside the REST API: {@linkcode serveUi} and
 * its files (`index.html`, `app.js`, `view.js`, `style.css`).
 *
 * @module
 */
export * from "./serve.ts";
