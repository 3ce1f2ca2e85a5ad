/**
 * Raw HTTP/1.1 over a TCP socket, for tests of what a server answers to
 * requests `fetch` cannot send (oversize heads, half-sent requests).
 */

const enc = new TextEncoder();

/** Writes `data` to a fresh connection to `port` and reads the answer until the server closes (or `waitMs`). */
export async function raw(port: number, data: string, waitMs = 15_000): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(enc.encode(data));
    let out = "";
    const buf = new Uint8Array(64 * 1024);
    const timer = setTimeout(() => conn.close(), waitMs);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        out += new TextDecoder().decode(buf.subarray(0, n));
        if (/connection: close\r\n\r\n.*\n$/s.test(out)) break;
      }
    } catch {
      // closed by the timer
    } finally {
      clearTimeout(timer);
    }
    return out;
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

/** The status code and the body of a raw HTTP/1.1 answer. */
export function statusAndBody(text: string): { status: number; body: string } {
  const status = Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0);
  return { status, body: text.slice(text.indexOf("\r\n\r\n") + 4) };
}
