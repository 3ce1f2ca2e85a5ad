/**
 * The accepting side shared by the HTTP servers that read connections
 * themselves (`guarded_server.ts`, `lib/mesos/local/http_server.ts`): the
 * accept loop and the count of open connections per client address.
 *
 * @module
 */

/** Open connections per client address, for a per-client limit. */
export class ConnectionsPerClient {
  readonly #counts = new Map<string, number>();

  /** Notes one more connection from `ip`; returns how many it has open now. */
  open(ip: string): number {
    const count = (this.#counts.get(ip) ?? 0) + 1;
    this.#counts.set(ip, count);
    return count;
  }

  /** Notes that one connection from `ip` closed. */
  close(ip: string): void {
    const left = (this.#counts.get(ip) ?? 1) - 1;
    if (left <= 0) this.#counts.delete(ip);
    else this.#counts.set(ip, left);
  }
}

/**
 * Hands every connection `listener` accepts to `serve` (not awaited). A
 * failed accept (e.g. out of file descriptors) is tried again 50 ms later;
 * resolves once the listener is closed and `closing()` says so.
 */
export async function acceptConnections<C extends Deno.Conn>(
  listener: Deno.Listener<C>,
  closing: () => boolean,
  serve: (conn: C) => void,
): Promise<void> {
  for (;;) {
    let conn: C;
    try {
      conn = await listener.accept();
    } catch {
      if (closing()) return;
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    serve(conn);
  }
}
