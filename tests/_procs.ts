/**
 * The processes of this machine that a test asks about, read from /proc:
 * each with its pid, its command line (NULs as spaces) and its working
 * directory ("" where it is not ours to read). Zombies and this process
 * are left out.
 *
 * @module
 */

/** A running process as the tests see it. */
export interface ProcessView {
  pid: number;
  cmd: string;
  cwd: string;
}

/** The running processes for which `where` holds. */
export function processesWhere(where: (p: ProcessView) => boolean): ProcessView[] {
  const found: ProcessView[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    const pid = Number(e.name);
    if (!Number.isInteger(pid) || pid === Deno.pid) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ").trim();
      if (cmd === "") continue; // a zombie
      let cwd = "";
      try {
        cwd = Deno.readLinkSync(`/proc/${pid}/cwd`);
      } catch {
        // not ours to read
      }
      const p = { pid, cmd, cwd };
      if (where(p)) found.push(p);
    } catch {
      // gone
    }
  }
  return found;
}
