/**
 * Prometheus' own checker for the `/metrics` text: `promtool check metrics`
 * (Debian package `prometheus`, installed by `deno task setup`).
 *
 * @module
 */

const PROMTOOL = "/usr/bin/promtool";

/** Runs `promtool check metrics` on `text`; returns its exit code and output. */
export async function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  try {
    await Deno.stat(PROMTOOL);
  } catch {
    throw new Error(`${PROMTOOL} is missing; install the Debian package "prometheus"`);
  }
  const child = new Deno.Command(PROMTOOL, {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr) };
}
