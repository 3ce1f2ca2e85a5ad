/**
 * `mrr init`: check that a scheduler answers at a URL and save the URL.
 *
 * @module
 */

import { type HealthAnswer, SchedulerClient } from "./client.ts";
import { type Command, usageHint } from "./command.ts";
import { type Context, println } from "./context.ts";
import { UsageError } from "./errors.ts";
import { parseDurationFlag, parseFlags, stringFlag } from "./flags.ts";
import { configPath, parseEndpoint, saveUserConfig } from "./user_config.ts";

const HINT = usageHint("init");

/** The health line `mrr init` prints: `Health: OK (...)` or `Health: UNAVAILABLE: ...`. */
export function healthLine(h: HealthAnswer): string {
  const parts = `role ${h.Role}, Mesos ${h.Mesos}, store ${h.Store}`;
  return h.Status === "OK"
    ? `Health: OK (${parts})`
    : `Health: UNAVAILABLE (${parts}); it cannot create or heal instances until this clears`;
}

/** The `init` command. */
export const initCommand: Command = {
  name: "init",
  aliases: ["i"],
  summary: "Point mrr at a scheduler: mrr init http://HOST:5656",
  usage: "init [--token TOKEN] [--timeout DUR] [http://]HOST:PORT",
  flags: [{
    name: "timeout",
    type: "string",
    placeholder: "DUR",
    description: "how long to wait for the scheduler to answer (default 10s)",
  }, {
    name: "token",
    type: "string",
    placeholder: "TOKEN",
    description: "the API token to send (default $MRR_TOKEN; none when neither is given)",
  }],
  notes: [
    "HOST:PORT without a scheme means http://HOST:PORT.",
    "The scheduler must answer GET /v1/STATUS; then the URL is saved in",
    "$MRR_CONFIG, $XDG_CONFIG_HOME/mrr/config.json or ~/.mrr/config.json (first that applies).",
    "MRR_ENDPOINT, when set, overrides the saved URL for every command.",
    "A token is saved with the URL (the file is then readable by you only);",
    "MRR_TOKEN, when set, overrides the saved token for every command.",
    "The scheduler's health (GET /v1/HEALTH: leader, Mesos connection, store) is printed",
    "too; UNAVAILABLE means it cannot create or heal instances until that clears.",
  ],
  examples: [
    "mrr init http://10.0.0.1:5656",
    "mrr init 10.0.0.1:5656",
    "mrr init https://mrredis.example.com --token 3b1f...e9",
  ],
  async run(args: string[], ctx: Context): Promise<number> {
    const parsed = parseFlags(args, this.flags, HINT);
    const timeoutFlag = stringFlag(parsed, "timeout");
    const timeoutMs = timeoutFlag ? parseDurationFlag(timeoutFlag, HINT) : 10_000;
    const [url, extra] = parsed.positionals;
    if (url === undefined) {
      throw new UsageError(
        '"mrr init" needs the URL of the scheduler, e.g. "mrr init http://10.0.0.1:5656"',
        HINT,
      );
    }
    if (extra !== undefined) throw new UsageError(`Unexpected argument "${extra}"`, HINT);
    const endpoint = parseEndpoint(url, "The scheduler URL", HINT);
    const path = configPath(ctx.env);
    const tokenFlag = stringFlag(parsed, "token")?.value;
    if (tokenFlag !== undefined && (tokenFlag === "" || /\s/.test(tokenFlag))) {
      throw new UsageError('Flag "--token" must be a token with no spaces', HINT);
    }
    const token = tokenFlag ?? (ctx.env("MRR_TOKEN") || undefined);

    const client = new SchedulerClient(endpoint, { timeoutMs, ...(token ? { token } : {}) });
    const instances = await client.list();
    await saveUserConfig(path, token ? { endpoint, token } : { endpoint });
    println(
      ctx.stdout,
      `Scheduler at ${endpoint} answers (${instances.length} instance${
        instances.length === 1 ? "" : "s"
      }); saved in ${path}`,
    );
    // Whether it can act now (GET /v1/HEALTH): leader, Mesos, store.
    const health = await client.health().catch(() => undefined);
    if (health) println(ctx.stdout, healthLine(health));
    return 0;
  },
};
