/**
 * Helpers of the partition tests on a multi-host local cluster: a client
 * that writes with `WAIT 1 1000` and follows the master through STATUS,
 * write samplers (also inside a host's namespace, where a cut-off master can
 * still be reached) and the count of samples with two writable masters.
 *
 * @module
 */
import { RespClient } from "./_resp.ts";
import { type Sched, status } from "./_sched.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** A write a client had acknowledged by a replica (`WAIT 1` ≥ 1). */
export interface Ack {
  /** When the acknowledgement came (ms since epoch). */
  t: number;
  /** `host:port` of the master that took it. */
  target: string;
}

/** Writes `w:<i>` keys one after another on the current master, each followed by `WAIT 1 1000`. */
export class WaitingWriter {
  /** Keys acknowledged by a replica, with their values. */
  readonly acked: Map<string, string> = new Map();
  /** When each acknowledgement came, in order. */
  readonly acks: Ack[] = [];
  /** Writes tried. */
  tried = 0;
  #running = true;
  readonly #loop: Promise<void>;

  /** Starts writing to instance `name` of `sched`. */
  constructor(sched: Sched, name: string, password: string | undefined) {
    this.#loop = (async () => {
      let client: RespClient | undefined;
      let target = "";
      for (let i = 0; this.#running; i++) {
        try {
          if (!client) {
            const view = await status(sched, name);
            if (!view?.Master) throw new Error("no master");
            client = new RespClient(view.Master.IP, Number(view.Master.Port), password);
            target = `${view.Master.IP}:${view.Master.Port}`;
          }
          const key = `w:${i}`;
          const value = `v${i}-${Date.now()}`;
          this.tried++;
          await client.command(["SET", key, value], 2000);
          const replicas = Number(await client.command(["WAIT", "1", "1000"], 3000));
          if (replicas >= 1) {
            this.acked.set(key, value);
            this.acks.push({ t: Date.now(), target });
          }
          // A steady stream, not a flood (the machine is shared).
          await new Promise((r) => setTimeout(r, 10));
        } catch {
          client?.close();
          client = undefined;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      client?.close();
    })();
  }

  /** The first acknowledgement after `since` by a master other than `old`. */
  firstAckElsewhere(since: number, old: string): Ack | undefined {
    return this.acks.find((a) => a.t > since && a.target !== old);
  }

  /** Stops writing (waits for the write in flight). */
  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}

/** One answer of a write sampler. */
export interface Sample {
  /** When it came (ms since epoch). */
  t: number;
  /** `host:port`. */
  target: string;
  /** The write was taken. */
  ok: boolean;
}

/** A `_write_probe.ts` process (in network namespace `namespace` when given). */
export class WriteSampler {
  readonly samples: Sample[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #reading: Promise<void>;

  /** Starts sampling `targets` (`host:port`) every `intervalMs`. */
  constructor(
    targets: string[],
    password: string | undefined,
    namespace?: string,
    intervalMs = 50,
  ) {
    const deno = [
      Deno.execPath(),
      "run",
      "-A",
      "--no-lock",
      `${ROOT}/tests/_write_probe.ts`,
      String(intervalMs),
      password ?? "-",
      ...targets,
    ];
    const argv = namespace ? ["ip", "netns", "exec", namespace, ...deno] : deno;
    const child = new Deno.Command(argv[0]!, {
      args: argv.slice(1),
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#child = child;
    this.#reading = (async () => {
      let rest = "";
      const decoder = new TextDecoder();
      for await (const chunk of child.stdout) {
        rest += decoder.decode(chunk, { stream: true });
        const lines = rest.split("\n");
        rest = lines.pop()!;
        for (const line of lines) {
          try {
            this.samples.push(JSON.parse(line));
          } catch {
            // not a sample
          }
        }
      }
    })();
  }

  /** Stops the sampler (closes its stdin; SIGKILL after 10 s). */
  async stop(): Promise<void> {
    await this.#child.stdin.close().catch(() => {});
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // gone
      }
    }, 10_000);
    await this.#child.status;
    clearTimeout(timer);
    await this.#reading;
  }
}

/**
 * Moments when two different targets both took a write within `windowMs`
 * of each other (two writable masters in one sample), as text.
 */
export function doubleMasters(samples: Sample[], windowMs = 50): string[] {
  const ok = samples.filter((s) => s.ok).sort((a, b) => a.t - b.t);
  const found: string[] = [];
  for (let i = 0; i < ok.length; i++) {
    for (let k = i + 1; k < ok.length && ok[k]!.t - ok[i]!.t < windowMs; k++) {
      if (ok[k]!.target !== ok[i]!.target) {
        found.push(`${new Date(ok[i]!.t).toISOString()}: ${ok[i]!.target} and ${ok[k]!.target}`);
        break;
      }
    }
  }
  return found;
}

/** Runs `ip args` (throws with its stderr when it fails). */
export async function ip(args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}
