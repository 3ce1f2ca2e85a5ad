/**
 * Byte helpers shared by the servers and the proxy that write to
 * connections themselves.
 *
 * @module
 */

/** Writes all of `bytes` to `conn` (a write may take only part of them). */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    done += await conn.write(done === 0 ? bytes : bytes.subarray(done));
  }
}

/** The parts one after another; a single part is returned as it is, not copied. */
export function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
