/**
 * Write sampler for partition tests, run as a process of its own (also in a
 * test host's network namespace: `ip netns exec NS deno run -A
 * tests/_write_probe.ts ...`): every `intervalMs` it tries `SET` on every
 * target and prints one JSON line per answer,
 * `{"t": <ms since epoch>, "target": "host:port", "ok": true|false}` (`ok`:
 * the write was taken; a refusal such as NOREPLICAS or READONLY is false; no
 * answer prints nothing). Runs until its stdin closes.
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
    client.command(["SET", "partition-test:probe", String(began)], 2000).then(
      () => true,
      (error) => error instanceof RespError ? false : undefined,
    ).then((ok) => {
      busy.delete(client);
      if (ok === undefined) return;
      const line = JSON.stringify({ t: Date.now(), target: `${client.host}:${client.port}`, ok });
      out.writeSync(encoder.encode(line + "\n"));
    });
  }
  await new Promise((r) => setTimeout(r, Math.max(1, intervalMs - (Date.now() - began))));
}
for (const client of clients) client.close();
Deno.exit(0);
