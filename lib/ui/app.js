/**
 * The web UI's browser side: polls `GET /v1/STATUS` every 2 s, renders it
 * with `view.js`, and drives the create, update and delete calls. Same origin only;
 * data reaches the DOM through `textContent` alone. When the scheduler wants
 * an API token (401), a form asks for it once; it is kept in sessionStorage
 * (this tab, until it closes) and sent as `Authorization: Bearer`.
 *
 * @module
 */
import { buildRows, createRequest, renderRows, updateRequest } from "./view.js";
import { buildTimeline, healthBanner } from "./ops.js";

const REFRESH_MS = 2000;
/** @type {Set<string>} names whose processes are shown */
const expanded = new Set();

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
function byId(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`The page has no element #${id}`);
  return e;
}

const rowsEl = byId("rows");
const bannerEl = byId("banner");
const updatedEl = byId("updated");
const answerEl = byId("answer");
const form = /** @type {HTMLFormElement} */ (byId("create"));
const updateForm = /** @type {HTMLFormElement} */ (byId("update"));
const listEl = byId("list");
const loginForm = /** @type {HTMLFormElement} */ (byId("login"));
const healthEl = byId("health");
const eventsEl = byId("events");
const eventsNameEl = byId("events-name");
const timelineEl = byId("timeline");
/** @type {string | null} the instance whose events are shown (the last one opened) */
let eventsOf = null;

/** Shows the health banner from `GET /v1/HEALTH` (hidden when all is well or unknown). */
async function refreshHealth() {
  try {
    const res = await fetch("/v1/HEALTH", { cache: "no-store" });
    const message = healthBanner(await res.json());
    healthEl.textContent = message ?? "";
    healthEl.hidden = message === null;
  } catch {
    // The STATUS banner already says when the scheduler cannot be reached.
  }
}

/** Shows the event timeline of `eventsOf` from `GET /v1/EVENTS/{name}`. */
async function refreshEvents() {
  if (eventsOf === null) {
    eventsEl.hidden = true;
    return;
  }
  const name = eventsOf;
  try {
    const res = await fetch(`/v1/EVENTS/${encodeURIComponent(name)}`, {
      headers: { accept: "application/json", ...authHeaders() },
      cache: "no-store",
    });
    const events = res.ok ? await res.json() : [];
    if (eventsOf !== name) return;
    eventsNameEl.textContent = name;
    timelineEl.replaceChildren(buildTimeline(document, name, Array.isArray(events) ? events : []));
    eventsEl.hidden = false;
  } catch {
    // Shown again at the next refresh.
  }
}

const TOKEN_KEY = "mrr-api-token";

/** @returns {Record<string, string>} the Authorization header, when a token is kept */
function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}

/**
 * Shows the token form after a 401 (and forgets a token that was refused).
 * @param {Response} res
 */
function checkAuth(res) {
  if (res.status !== 401) return;
  sessionStorage.removeItem(TOKEN_KEY);
  loginForm.hidden = false;
}

loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = String(new FormData(loginForm).get("token") ?? "").trim();
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  loginForm.reset();
  loginForm.hidden = true;
  await refresh();
});

/** @type {unknown[]} the last STATUS list */
let last = [];
let timer = 0;
let inFlight = false;
/** @type {string} when the list was last fetched, `""` before the first time */
let lastOk = "";

/**
 * Shows an API answer line under the form (`ok` green, otherwise red).
 * @param {string} text
 * @param {boolean} ok
 */
function showAnswer(text, ok) {
  answerEl.textContent = text;
  answerEl.className = ok ? "answer ok" : "answer err";
}

/**
 * Shows a problem in the banner and greys out the list (it may be stale);
 * `null` hides the banner.
 * @param {string | null} message
 */
function showBanner(message) {
  if (message === null) {
    bannerEl.hidden = true;
    bannerEl.textContent = "";
    listEl.classList.remove("stale");
  } else {
    const since = lastOk ? ` The list below is as of ${lastOk}.` : "";
    bannerEl.textContent = message + since;
    bannerEl.hidden = false;
    listEl.classList.add("stale");
  }
}

/** Whether the user is selecting text in the list (a re-render would lose it). */
function selecting() {
  const sel = document.getSelection();
  return !!sel && !sel.isCollapsed && !!sel.anchorNode && rowsEl.contains(sel.anchorNode);
}

function render() {
  if (selecting()) return;
  rowsEl.replaceChildren(
    buildRows(document, renderRows(/** @type {never} */ (last)), expanded),
  );
}

async function refresh() {
  if (inFlight) return;
  inFlight = true;
  try {
    const res = await fetch("/v1/STATUS", {
      headers: { accept: "application/json", ...authHeaders() },
      cache: "no-store",
    });
    checkAuth(res);
    if (!res.ok) {
      const line = (await res.text()).trim();
      showBanner(`The scheduler answered ${res.status}: ${line}`);
      return;
    }
    const data = await res.json();
    if (!Array.isArray(data)) throw new TypeError("STATUS is not a JSON array");
    last = data;
    lastOk = new Date().toLocaleTimeString();
    showBanner(null);
    updatedEl.textContent = `Updated ${lastOk}`;
    render();
    await Promise.all([refreshHealth(), refreshEvents()]);
  } catch (error) {
    showBanner(
      `Cannot reach the scheduler (${
        error instanceof Error ? error.message : String(error)
      }); retrying every ${REFRESH_MS / 1000} s…`,
    );
  } finally {
    inFlight = false;
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    await refresh();
    schedule();
  }, REFRESH_MS);
}

/**
 * Sends one API call and shows its answer line.
 * @param {string} method
 * @param {string} path
 * @param {string | undefined} body
 * @returns {Promise<boolean>} whether it succeeded
 */
async function call(method, path, body) {
  try {
    /** @type {Record<string, string>} */
    const headers = authHeaders();
    /** @type {RequestInit} */
    const init = { method, headers };
    if (body !== undefined) {
      init.body = body;
      headers["content-type"] = "application/json";
    }
    const res = await fetch(path, init);
    checkAuth(res);
    const line = (await res.text()).trim();
    showAnswer(`${res.status} ${line}`, res.ok);
    return res.ok;
  } catch (error) {
    showAnswer(
      `Cannot reach the scheduler: ${error instanceof Error ? error.message : String(error)}`,
      false,
    );
    return false;
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(form);
  const req = createRequest({
    name: String(data.get("name") ?? ""),
    capacity: String(data.get("capacity") ?? ""),
    slaves: String(data.get("slaves") ?? ""),
    masters: String(data.get("masters") ?? ""),
    distribution: String(data.get("distribution") ?? ""),
  });
  for (const input of form.querySelectorAll("input")) input.removeAttribute("aria-invalid");
  if (!req.ok) {
    form.querySelector(`[name="${req.field}"]`)?.setAttribute("aria-invalid", "true");
    showAnswer(req.error, false);
    return;
  }
  const button = form.querySelector("button");
  button?.setAttribute("disabled", "");
  try {
    if (await call("POST", req.path, req.body)) await refresh();
  } finally {
    button?.removeAttribute("disabled");
  }
});

updateForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(updateForm);
  const req = updateRequest({
    name: String(data.get("name") ?? ""),
    capacity: String(data.get("capacity") ?? ""),
    slaves: String(data.get("slaves") ?? ""),
    distribution: String(data.get("distribution") ?? ""),
    proxies: String(data.get("proxies") ?? ""),
  });
  for (const input of updateForm.querySelectorAll("input")) input.removeAttribute("aria-invalid");
  if (!req.ok) {
    updateForm.querySelector(`[name="${req.field}"]`)?.setAttribute("aria-invalid", "true");
    showAnswer(req.error, false);
    return;
  }
  const button = updateForm.querySelector("button");
  button?.setAttribute("disabled", "");
  try {
    if (await call("PUT", req.path, req.body)) await refresh();
  } finally {
    button?.removeAttribute("disabled");
  }
});

rowsEl.addEventListener("click", async (event) => {
  const target = /** @type {Element} */ (event.target);
  const button = target.closest("button[data-action]");
  if (!button) return;
  const action = button.getAttribute("data-action");
  const name = button.getAttribute("data-name") ?? "";
  if (action === "toggle") {
    if (expanded.has(name)) expanded.delete(name);
    else {
      expanded.add(name);
      // The timeline follows the instance opened last.
      eventsOf = name;
      await refreshEvents();
    }
    render();
  } else if (action === "delete") {
    if (!confirm(`Delete instance "${name}"? Its redis processes are killed and its data lost.`)) {
      return;
    }
    if (await call("DELETE", `/v1/DELETE/${encodeURIComponent(name)}`, undefined)) {
      await refresh();
    }
  } else if (action === "copy") {
    const text = button.getAttribute("data-text") ?? "";
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      // No clipboard (not a secure context): select the line instead.
      const code = button.parentElement?.querySelector("code");
      if (code) document.getSelection()?.selectAllChildren(code);
      button.textContent = "Select and copy";
    }
  }
});

// A link to an instance's timeline: /#events=NAME opens it.
const linked = /^#events=([A-Za-z0-9_-]{1,64})$/.exec(location.hash);
if (linked) {
  eventsOf = linked[1] ?? null;
  if (eventsOf) expanded.add(eventsOf);
}

await refresh();
schedule();
