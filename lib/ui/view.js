/**
 * The web UI's pure render logic: STATUS JSON in, plain row data out, and DOM
 * building through a `document` passed in. No network, no globals, so a Deno
 * test can run every function. Data only ever reaches the DOM through
 * `textContent` and attributes, never `innerHTML`.
 *
 * @module
 */

/** Longest instance name (as the API). */
export const MAX_NAME_LENGTH = 64;
/** Largest capacity, MB (as the API). */
export const MAX_CAPACITY_MB = 65536;
/** Most slaves of one instance (as the API). */
export const MAX_SLAVES = 100;
/** Most masters (Redis Cluster shards) of one instance (as the API). */
export const MAX_MASTERS = 100;
/** Largest Distribution (as the API). */
export const MAX_DISTRIBUTION = 100;
/** Most proxy endpoints of one instance (as the API). */
export const MAX_PROXIES = 16;

/**
 * One redis process as STATUS shows it.
 * @typedef {object} ProcessJson
 * @property {string} IP
 * @property {string} Port
 * @property {number} MemoryCapacity MB
 * @property {number} MemoryUsed bytes
 * @property {number} Uptime seconds
 * @property {number} ClientsConnected
 * @property {number} LastSyncedToMaster seconds
 * @property {string} [Id]
 * @property {string} [State]
 * @property {boolean} [InSync]
 */

/**
 * One instance as STATUS shows it.
 * @typedef {object} InstanceJson
 * @property {string} Name
 * @property {string} Type
 * @property {string} Status
 * @property {number} Capacity MB
 * @property {ProcessJson | null} Master
 * @property {ProcessJson[]} Slaves
 * @property {string | null} [Reason]
 * @property {number} [SlavesWanted]
 * @property {number} [ProcessesRunning]
 * @property {number} [ProcessesTotal]
 * @property {number} [Epoch]
 * @property {string | null} [LastEvent]
 * @property {{ Target: { Capacity: number, Slaves: number, Distribution: number }, Phase: string, Waiting?: string | null } | null} [Update]
 * @property {{ IP: string, Port: string, Id?: string }[]} [Proxies] running proxy endpoints
 * @property {number} [ProxiesWanted]
 * @property {ShardJson[]} [Shards] a Redis Cluster's shards
 */

/**
 * One shard of a Redis Cluster instance.
 * @typedef {object} ShardJson
 * @property {string} Slots e.g. `0-5460`
 * @property {ProcessJson | null} Master
 * @property {ProcessJson[]} Slaves
 */

/**
 * One process, formatted for the details table.
 * @typedef {object} ProcessRow
 * @property {string} role `master` or `slave`
 * @property {string} id process id, or `""`
 * @property {string} state scheduler-side state, or `""`
 * @property {string} address `IP:Port`, or `-`
 * @property {string} memory e.g. `1.2 MB of 100 MB`
 * @property {string} uptime e.g. `1h 02m`
 * @property {string} clients
 * @property {string} lastSync e.g. `0 s ago, in sync`, or `-` for a master
 * @property {string} cli `redis-cli -h IP -p PORT --askpass`, or `""` without an address
 * @property {string} [slots] a Redis Cluster node: its shard's slots
 */

/**
 * One instance, formatted for the list.
 * @typedef {object} InstanceRow
 * @property {string} name
 * @property {string} type
 * @property {string} status
 * @property {string} statusClass CSS class giving the status its colour
 * @property {string} capacity e.g. `100 MB`
 * @property {string} master `IP:Port`, or `-`
 * @property {string} slaves e.g. `2 of 2`
 * @property {string} processes running/total, e.g. `3/3`
 * @property {string} reason `""` when none; the change in progress while one runs
 * @property {string} lastEvent `""` when none
 * @property {string} epoch
 * @property {ProcessRow[]} procs master first, then the slaves
 * @property {string} proxies running proxy addresses, e.g. `10.0.0.1:31005, 10.0.0.2:31502`, or `""`
 * @property {string} proxiesCount e.g. `2 of 2`
 * @property {string} proxyCli `redis-cli` line of the first running proxy, or `""`
 */

/**
 * The CSS class for an instance status: RUNNING green, CREATING and
 * FAILING_OVER amber, DEGRADED orange, DELETING grey.
 * @param {string} status
 * @returns {string}
 */
export function statusClass(status) {
  switch (status) {
    case "RUNNING":
      return "st-running";
    case "CREATING":
    case "FAILING_OVER":
      return "st-amber";
    case "DEGRADED":
      return "st-degraded";
    case "DELETING":
    case "DELETED":
      return "st-deleting";
    default:
      return "st-other";
  }
}

/**
 * `IP:Port` of a process, or `-` when there is none (no master yet).
 * @param {ProcessJson | null | undefined} proc
 * @returns {string}
 */
export function address(proc) {
  if (!proc || !proc.IP || !proc.Port) return "-";
  return `${proc.IP}:${proc.Port}`;
}

/**
 * A byte count for people: `512 B`, `1.2 KB`, `3.4 MB`, `1.0 GB`.
 * @param {number} bytes
 * @returns {string}
 */
export function formatBytes(bytes) {
  if (!Number.isFinite(bytes) || bytes < 0) return "-";
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let n = bytes / 1024;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(1)} ${units[i]}`;
}

/**
 * A duration in seconds for people: `45 s`, `3m 07s`, `1h 02m`, `2d 4h`.
 * @param {number} seconds
 * @returns {string}
 */
export function formatUptime(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "-";
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/**
 * The `redis-cli` line reaching a process (with `-c` for a cluster node,
 * which follows redirections), or `""` without an address.
 * @param {ProcessJson | null | undefined} proc
 * @param {boolean} [cluster]
 * @returns {string}
 */
export function redisCli(proc, cluster = false) {
  if (!proc || !proc.IP || !proc.Port) return "";
  // --askpass: the instance password (mrr credentials) is typed in, never shown in the page.
  return `redis-cli${cluster ? " -c" : ""} -h ${proc.IP} -p ${proc.Port} --askpass`;
}

/**
 * @param {string} role
 * @param {ProcessJson} p
 * @param {string} [slots] a cluster node's shard slots
 * @returns {ProcessRow}
 */
function processRow(role, p, slots) {
  const used = formatBytes(p.MemoryUsed);
  const cap = Number.isFinite(p.MemoryCapacity) ? `${p.MemoryCapacity} MB` : "-";
  let lastSync = "-";
  if (role === "slave") {
    lastSync = `${formatUptime(p.LastSyncedToMaster)} ago`;
    if (p.InSync !== undefined) lastSync += p.InSync ? ", in sync" : ", not in sync";
  }
  return {
    role,
    id: p.Id ?? "",
    state: p.State ?? "",
    address: address(p),
    memory: `${used} of ${cap}`,
    uptime: formatUptime(p.Uptime),
    clients: String(p.ClientsConnected ?? 0),
    lastSync,
    cli: redisCli(p, slots !== undefined),
    ...(slots !== undefined ? { slots } : {}),
  };
}

/**
 * Formats a STATUS list (`GET /v1/STATUS`) into rows, sorted by name.
 * @param {readonly InstanceJson[]} instances
 * @returns {InstanceRow[]}
 */
export function renderRows(instances) {
  return [...instances]
    .sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0))
    .map((inst) => {
      const shards = Array.isArray(inst.Shards) ? inst.Shards : undefined;
      const slaves = shards
        ? shards.flatMap((s) => (Array.isArray(s.Slaves) ? s.Slaves : []))
        : Array.isArray(inst.Slaves)
        ? inst.Slaves
        : [];
      const wanted = shards && inst.SlavesWanted !== undefined
        ? inst.SlavesWanted * shards.length
        : inst.SlavesWanted ?? slaves.length;
      const total = inst.ProcessesTotal ?? slaves.length + (inst.Master ? 1 : 0);
      const running = inst.ProcessesRunning ?? 0;
      /** @type {ProcessRow[]} */
      const procs = [];
      if (shards) {
        // A Redis Cluster: each shard's master, then its replicas.
        for (const shard of shards) {
          if (shard.Master) procs.push(processRow("master", shard.Master, shard.Slots));
          for (const s of shard.Slaves ?? []) procs.push(processRow("slave", s, shard.Slots));
        }
      } else {
        if (inst.Master) procs.push(processRow("master", inst.Master));
        for (const s of slaves) procs.push(processRow("slave", s));
      }
      const proxies = Array.isArray(inst.Proxies) ? inst.Proxies : [];
      return {
        name: String(inst.Name),
        type: String(inst.Type),
        status: String(inst.Status),
        statusClass: statusClass(inst.Status),
        capacity: `${inst.Capacity} MB`,
        master: shards
          ? `${address(inst.Master)}${shards.length > 1 ? ` (+${shards.length - 1} shards)` : ""}`
          : address(inst.Master),
        slaves: `${slaves.length} of ${wanted}`,
        processes: `${running}/${total}`,
        reason: inst.Update ? updateText(inst.Update) : inst.Reason ?? "",
        lastEvent: inst.LastEvent ?? "",
        epoch: String(inst.Epoch ?? 0),
        procs,
        proxies: proxies.map((p) => address(/** @type {never} */ (p))).join(", "),
        proxiesCount: `${proxies.length} of ${inst.ProxiesWanted ?? proxies.length}`,
        proxyCli: redisCli(/** @type {never} */ (proxies[0])),
      };
    });
}

/**
 * A change in progress in words: `Updating to 200 MB, 1 slave, Distribution 1: switching master`.
 * @param {NonNullable<InstanceJson["Update"]>} u
 * @returns {string}
 */
export function updateText(u) {
  const t = u.Target;
  const waiting = u.Waiting ? ` (${u.Waiting})` : "";
  return `Updating to ${t.Capacity} MB, ${t.Slaves} slave${
    t.Slaves === 1 ? "" : "s"
  }, Distribution ${t.Distribution}: ${u.Phase}${waiting}`;
}

/**
 * The create form's values, as typed.
 * @typedef {object} CreateForm
 * @property {string} name
 * @property {string} capacity MB
 * @property {string} slaves
 * @property {string} [masters] `""` or absent for 1; more makes a Redis Cluster
 * @property {string} distribution `""` for the default
 */

/**
 * A checked create request: the path and body to POST, or the first error.
 * @typedef {{ ok: true, path: string, body: string | undefined } | { ok: false, field: string, error: string }} CreateRequest
 */

/**
 * @param {string} raw
 * @param {number} min
 * @param {number} max
 * @returns {number | undefined}
 */
function wholeNumber(raw, min, max) {
  if (!/^\d{1,9}$/.test(raw)) return undefined;
  const n = Number(raw);
  return n >= min && n <= max ? n : undefined;
}

/**
 * Checks the create form with the API's rules (the API checks again) and
 * builds the request: `POST /v1/CREATE/{name}/{cap}/1/{slaves}`, with a JSON
 * body `{"Distribution": n}` only when Distribution is given.
 * @param {CreateForm} form
 * @returns {CreateRequest}
 */
export function createRequest(form) {
  const name = form.name.trim();
  if (!/^[A-Za-z0-9_-]+$/.test(name) || name.length > MAX_NAME_LENGTH) {
    return {
      ok: false,
      field: "name",
      error: `Name must be 1 to ${MAX_NAME_LENGTH} letters, digits, "-" or "_"`,
    };
  }
  const capacity = wholeNumber(form.capacity.trim(), 1, MAX_CAPACITY_MB);
  if (capacity === undefined) {
    return {
      ok: false,
      field: "capacity",
      error: `Capacity must be a whole number of MB from 1 to ${MAX_CAPACITY_MB}`,
    };
  }
  const slaves = wholeNumber(form.slaves.trim() || "0", 0, MAX_SLAVES);
  if (slaves === undefined) {
    return {
      ok: false,
      field: "slaves",
      error: `Slaves must be a whole number from 0 to ${MAX_SLAVES}`,
    };
  }
  const masters = wholeNumber((form.masters ?? "").trim() || "1", 1, MAX_MASTERS);
  if (masters === undefined) {
    return {
      ok: false,
      field: "masters",
      error: `Masters must be a whole number from 1 to ${MAX_MASTERS}`,
    };
  }
  const rawDist = form.distribution.trim();
  let body;
  if (rawDist !== "") {
    const dist = wholeNumber(rawDist, 1, MAX_DISTRIBUTION);
    if (dist === undefined) {
      return {
        ok: false,
        field: "distribution",
        error: `Distribution must be a whole number from 1 to ${MAX_DISTRIBUTION}`,
      };
    }
    body = JSON.stringify({ Distribution: dist });
  }
  return {
    ok: true,
    path: `/v1/CREATE/${encodeURIComponent(name)}/${capacity}/${masters}/${slaves}`,
    body,
  };
}

/**
 * The update form's values, as typed (`""`: unchanged).
 * @typedef {object} UpdateForm
 * @property {string} name
 * @property {string} capacity MB
 * @property {string} slaves
 * @property {string} distribution
 * @property {string} [proxies]
 */

/**
 * Checks the update form with the API's rules (the API checks again) and
 * builds the request: `PUT /v1/UPDATE/{name}` with a JSON body of the fields
 * given (at least one).
 * @param {UpdateForm} form
 * @returns {CreateRequest}
 */
export function updateRequest(form) {
  const name = form.name.trim();
  if (!/^[A-Za-z0-9_-]+$/.test(name) || name.length > MAX_NAME_LENGTH) {
    return {
      ok: false,
      field: "name",
      error: `Name must be 1 to ${MAX_NAME_LENGTH} letters, digits, "-" or "_"`,
    };
  }
  /** @type {[keyof UpdateForm, string, number, number, string][]} */
  const fields = [
    ["capacity", "Capacity", 1, MAX_CAPACITY_MB, "a whole number of MB"],
    ["slaves", "Slaves", 0, MAX_SLAVES, "a whole number"],
    ["distribution", "Distribution", 1, MAX_DISTRIBUTION, "a whole number"],
    ["proxies", "Proxies", 0, MAX_PROXIES, "a whole number"],
  ];
  /** @type {Record<string, number>} */
  const body = {};
  for (const [field, key, min, max, what] of fields) {
    const raw = (form[field] ?? "").trim();
    if (raw === "") continue;
    const n = wholeNumber(raw, min, max);
    if (n === undefined) {
      return { ok: false, field, error: `${key} must be ${what} from ${min} to ${max}` };
    }
    body[key] = n;
  }
  if (Object.keys(body).length === 0) {
    return {
      ok: false,
      field: "capacity",
      error: "Give at least one of Capacity, Slaves, Distribution or Proxies to change",
    };
  }
  return {
    ok: true,
    path: `/v1/UPDATE/${encodeURIComponent(name)}`,
    body: JSON.stringify(body),
  };
}

/**
 * Makes an element with a class and text, through `textContent` only.
 * @param {Document} doc
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElement}
 */
export function el(doc, tag, className, text) {
  const e = doc.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * Builds the `<tbody>` rows of the instance list: one summary row per
 * instance and, for the names in `expanded`, a details row with each process
 * and its `redis-cli` line. Buttons carry `data-action` (`toggle`, `delete`,
 * `copy`) and `data-name` / `data-text` for the page's event handler.
 * @param {Document} doc
 * @param {readonly InstanceRow[]} rows
 * @param {ReadonlySet<string>} expanded
 * @returns {DocumentFragment}
 */
export function buildRows(doc, rows, expanded) {
  const frag = doc.createDocumentFragment();
  if (rows.length === 0) {
    const tr = el(doc, "tr", "empty");
    const td = el(doc, "td", "", "No instances yet. Create one with the form below.");
    td.setAttribute("colspan", "10");
    tr.append(td);
    frag.append(tr);
    return frag;
  }
  for (const row of rows) {
    const open = expanded.has(row.name);
    const tr = el(doc, "tr", open ? "inst open" : "inst");
    const toggle = el(doc, "button", "toggle", open ? "\u25BE" : "\u25B8");
    toggle.setAttribute("type", "button");
    toggle.setAttribute("data-action", "toggle");
    toggle.setAttribute("data-name", row.name);
    toggle.setAttribute("aria-expanded", String(open));
    toggle.setAttribute("aria-label", `Show the processes of ${row.name}`);
    const first = el(doc, "td", "name");
    first.append(toggle, el(doc, "span", "", row.name));
    const status = el(doc, "td");
    status.append(el(doc, "span", `badge ${row.statusClass}`, row.status));
    const del = el(doc, "button", "danger", "Delete");
    del.setAttribute("type", "button");
    del.setAttribute("data-action", "delete");
    del.setAttribute("data-name", row.name);
    if (row.status === "DELETING") del.setAttribute("disabled", "");
    const actions = el(doc, "td", "actions");
    actions.append(del);
    tr.append(
      first,
      el(doc, "td", "", row.type),
      status,
      el(doc, "td", "num", row.capacity),
      el(doc, "td", "mono", row.master),
      el(doc, "td", "num", row.slaves),
      el(doc, "td", "num", row.processes),
      el(doc, "td", "num", row.epoch),
      el(doc, "td", "reason", row.reason),
      actions,
    );
    frag.append(tr);
    if (open) frag.append(buildDetails(doc, row));
  }
  return frag;
}

/**
 * The details row of one instance: a table of its processes, the master's
 * `redis-cli` line with a copy button, and the last event.
 * @param {Document} doc
 * @param {InstanceRow} row
 * @returns {HTMLElement}
 */
export function buildDetails(doc, row) {
  const tr = el(doc, "tr", "details");
  const td = el(doc, "td");
  td.setAttribute("colspan", "10");
  tr.append(td);
  const master = row.procs.find((p) => p.role === "master");
  if (master && master.cli) {
    const line = el(doc, "div", "cli");
    const code = el(doc, "code", "", master.cli);
    const copy = el(doc, "button", "", "Copy");
    copy.setAttribute("type", "button");
    copy.setAttribute("data-action", "copy");
    copy.setAttribute("data-text", master.cli);
    line.append(code, copy);
    td.append(line);
  } else if (row.procs.length > 0) {
    td.append(el(doc, "p", "muted", "No master address yet."));
  }
  if (row.proxyCli) {
    // Proxies follow the master through failovers: the address clients should keep.
    td.append(el(doc, "p", "", `Proxies (${row.proxiesCount} running): ${row.proxies}`));
    const line = el(doc, "div", "cli");
    const copy = el(doc, "button", "", "Copy");
    copy.setAttribute("type", "button");
    copy.setAttribute("data-action", "copy");
    copy.setAttribute("data-text", row.proxyCli);
    line.append(el(doc, "code", "", row.proxyCli), copy);
    td.append(line);
  } else if (row.proxiesCount !== "0 of 0") {
    td.append(el(doc, "p", "muted", `Proxies: none running yet (${row.proxiesCount})`));
  }
  if (row.lastEvent) td.append(el(doc, "p", "muted", `Last event: ${row.lastEvent}`));
  if (row.procs.length === 0) {
    td.append(el(doc, "p", "muted", "No process has an address yet."));
    return tr;
  }
  const table = el(doc, "table", "procs");
  const head = el(doc, "tr");
  for (
    const h of ["Role", "Id", "State", "Address", "Memory", "Uptime", "Clients", "Last sync", ""]
  ) {
    head.append(el(doc, "th", "", h));
  }
  const thead = el(doc, "thead");
  thead.append(head);
  const tbody = el(doc, "tbody");
  for (const p of row.procs) {
    const r = el(doc, "tr", p.role);
    const role = p.slots !== undefined ? `${p.role} (slots ${p.slots})` : p.role;
    const cli = el(doc, "td");
    if (p.cli) {
      const copy = el(doc, "button", "small", "Copy redis-cli");
      copy.setAttribute("type", "button");
      copy.setAttribute("data-action", "copy");
      copy.setAttribute("data-text", p.cli);
      cli.append(copy);
    }
    r.append(
      el(doc, "td", "", role),
      el(doc, "td", "mono", p.id),
      el(doc, "td", "", p.state),
      el(doc, "td", "mono", p.address),
      el(doc, "td", "num", p.memory),
      el(doc, "td", "num", p.uptime),
      el(doc, "td", "num", p.clients),
      el(doc, "td", "", p.lastSync),
      cli,
    );
    tbody.append(r);
  }
  table.append(thead, tbody);
  td.append(table);
  return tr;
}
