/**
 * Write sampler for partition tests, run as a process of its own (also in a
 * test host's network namespace: `ip netns exec NS deno run -A
 * tests/_write_probe.ts ...`): every `intervalMs` it tries `SET` on every
 * target and prints one JSON line per answer,
 * `{"t": <ms since epoch>, "target": "host:port", "ok": true|false}` (`ok`:
 * the write was taken, `t` then the server's TIME at the write; a refusal
 * such as NOREPLICAS or READONLY is false, `t` when it came; no answer prints
 * nothing). Runs until its stdin closes.
 *
 * Usage: `_write_probe.ts INTERVAL_MS PASSWORD host:port [host:port...]`
 * (PASSWORD `-` for none).
 *
 * @module
 */
import { RespClient, RespError } from "./_resp.ts";

const [interval, password, ...targets] = Deno.args;
const intervalMs = Number(interval);
const clients = targets.map((t) => {
  const i = t.lastIndexOf(":");
  return new RespClient(
    t.slice(0, i),
    Number(t.slice(i + 1)),
    password === "-" ? undefined : password,
  );
});
const busy = new Set<RespClient>();
let running = true;
(async () => {
  for await (const _ of Deno.stdin.readable) {
    // nothing is sent; the end of stdin stops the sampler
  }
  running = false;
})();

const out = Deno.stdout;
const encoder = new TextEncoder();
while (running) {
  const began = Date.now();
  for (const client of clients) {
    if (busy.has(client)) continue; // its last write has not answered yet
    busy.add(client);
    // The server's own clock says when it took the write (TIME in the same
    // transaction), so a sampler slowed down by a busy machine cannot move it.
    client.transaction([["SET", "partition-test:probe", String(began)], ["TIME"]], 2000).then(
      (replies) => {
        const time = replies[1] as string[];
        return { t: Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000), ok: true };
      },
      (error) => error instanceof RespError ? { t: Date.now(), ok: false } : undefined,
    ).then((answer) => {
      busy.delete(client);
      if (answer === undefined) return;
      const line = JSON.stringify({ ...answer, target: `${client.host}:${client.port}` });
      out.writeSync(encoder.encode(line + "\n"));
    });
  }
  await new Promise((r) => setTimeout(r, Math.max(1, intervalMs - (Date.now() - began))));
}
for (const client of clients) client.close();
Deno.exit(0);
