/** The test port allocator: held ranges never overlap and hold no listening port. */
import { assert, assertEquals } from "./_assert.ts";
import { BLOCK_SIZE, portIsFree, reservePortRange, takePort } from "./_ports.ts";

Deno.test("reserved port ranges never overlap, hold only free ports, and come back on release", () => {
  const ranges = Array.from({ length: 20 }, (_, i) => reservePortRange(i % 2 ? 120 : 50));
  try {
    const seen = new Set<number>();
    for (const r of ranges) {
      assertEquals(r.size % BLOCK_SIZE, 0);
      assert(r.base >= 10_000 && r.base + r.size <= 32_768, `below the ephemeral range: ${r.base}`);
      for (let p = r.base; p < r.base + r.size; p++) {
        assert(!seen.has(p), `port ${p} handed out twice`);
        seen.add(p);
      }
    }
    assert(portIsFree(ranges[0]!.base));
  } finally {
    for (const r of ranges) r.release();
  }
});

Deno.test("a port something listens on is not free, and takePort never repeats", () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    assertEquals(portIsFree((listener.addr as Deno.NetAddr).port), false);
  } finally {
    listener.close();
  }
  const taken = Array.from({ length: 120 }, () => takePort());
  assertEquals(new Set(taken).size, taken.length);
  for (const p of taken.slice(0, 10)) assert(portIsFree(p));
});

Deno.test("a range held by another process is skipped", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { reservePortRange } from "${new URL("./_ports.ts", import.meta.url).href}";
       const r = reservePortRange(${40 * BLOCK_SIZE});
       console.log(r.base, r.size);
       await Deno.stdin.read(new Uint8Array(1));`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let line = "";
    while (!line.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the child ended early");
      line += value;
    }
    const [base, size] = line.trim().split(" ").map(Number) as [number, number];
    const mine = Array.from({ length: 30 }, () => reservePortRange(BLOCK_SIZE));
    try {
      for (const r of mine) {
        assert(
          r.base + r.size <= base || r.base >= base + size,
          `${r.base} inside ${base}+${size}`,
        );
      }
    } finally {
      for (const r of mine) r.release();
    }
  } finally {
    await child.stdin.close();
    await reader.cancel();
    await child.status;
  }
});

Deno.test("no test or benchmark hard-codes a port range for local agents", async () => {
  const offenders: string[] = [];
  for (const folder of ["tests", "bench"]) {
    const base = new URL(`../${folder}/`, import.meta.url);
    for await (const entry of Deno.readDir(base)) {
      if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
      const text = await Deno.readTextFile(new URL(entry.name, base));
      const fixed = /(?:portsBase|localPortsBase|LocalPortsBase)\s*:\s*\d|"--ports-base",\s*"\d/g;
      for (const line of text.split("\n")) {
        // A line that only builds flags (nothing listens) says so.
        if (line.includes("(ports-range-ok)")) continue;
        for (const m of line.matchAll(fixed)) offenders.push(`${folder}/${entry.name}: ${m[0]}`);
      }
    }
  }
  assertEquals(offenders, [], "use reservePortRange (tests/_ports.ts) instead");
});
