/**
 * Test helpers about TCP listeners on this machine: whether a loopback port
 * accepts connections, and which process holds a listening socket (read
 * from `/proc`), to signal the process that serves a port.
 *
 * @module
 */

/** Whether something accepts TCP connections on `port` (loopback). */
export async function listening(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
}

/** The pid of the process listening on TCP `port` (from /proc), or undefined. */
export function listenerPid(port: number): number | undefined {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = Deno.readTextFileSync(table);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is f[1] ("0100007F:7D5A"), state f[3] ("0A" = LISTEN), inode f[9].
      if (f[1]?.endsWith(`:${hex}`) && f[3] === "0A" && f[9]) inodes.add(f[9]);
    }
  }
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      for (const fd of Deno.readDirSync(`/proc/${entry.name}/fd`)) {
        const link = Deno.readLinkSync(`/proc/${entry.name}/fd/${fd.name}`);
        const m = /^socket:\[(\d+)\]$/.exec(link);
        if (m && inodes.has(m[1]!)) return Number(entry.name);
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return undefined;
}
