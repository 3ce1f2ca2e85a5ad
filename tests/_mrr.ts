/**
 * Runs the real `mrr` program as a process, the way a user does, with its
 * config file in a temp dir of the caller's choosing.
 *
 * @module
 */

const MRR = new URL("../cmd/mrr.ts", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;

/** What one `mrr` run printed and returned. */
export interface MrrResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `mrr args...` with `MRR_CONFIG=config` and `env` added (and
 * `MRR_ENDPOINT` and `MRR_TOKEN` unset unless `env` gives them). Output is piped, so it is not
 * a terminal.
 */
export async function runMrr(
  config: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<MrrResult> {
  const childEnv: Record<string, string> = { ...Deno.env.toObject() };
  delete childEnv.MRR_ENDPOINT;
  delete childEnv.MRR_TOKEN;
  Object.assign(childEnv, { NO_COLOR: "1", MRR_CONFIG: config }, env);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MRR, ...args],
    cwd: ROOT,
    clearEnv: true,
    env: childEnv,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/** Formats a result for assertion messages. */
export function show(r: MrrResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}
