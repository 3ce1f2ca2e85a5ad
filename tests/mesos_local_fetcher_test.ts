/**
 * The local agent's fetcher, held to the Mesos fetcher: `executable`,
 * `extract` of archives, and `cache` (one download per agent and user).
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { tempDir } from "./_util.ts";
import { FetcherCache, fetchUri, fetchUris } from "../lib/mesos/local/fetcher.ts";

Deno.test("the fetcher caches, extracts and marks executable as Mesos' fetcher does", async () => {
  const dir = await tempDir("fetcher");
  // A .tar.gz holding runtime/tool, made with the system tar.
  await Deno.mkdir(join(dir, "src", "runtime"), { recursive: true });
  await Deno.writeTextFile(join(dir, "src", "runtime", "tool"), "#!/bin/sh\necho tool\n");
  const tar = await new Deno.Command("tar", {
    args: ["-czf", join(dir, "tool.tar.gz"), "-C", join(dir, "src"), "runtime/tool"],
  }).output();
  assert(tar.success);
  const served: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    served.push(path);
    if (path === "/a/1/tool.tar.gz") {
      return new Response(await Deno.readFile(join(dir, "tool.tar.gz")));
    }
    if (path === "/a/2/prog") return new Response("#!/bin/sh\necho prog\n");
    return new Response("no", { status: 404 });
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  const cache = new FetcherCache(join(dir, "cache"));
  const uris = [
    { value: `${base}/a/1/tool.tar.gz`, extract: true, cache: true },
    { value: `${base}/a/2/prog`, executable: true, cache: true },
  ];
  try {
    for (const sandbox of ["s1", "s2", "s3"]) {
      await fetchUris(uris, join(dir, sandbox), { cache, user: "u" });
      assertEquals(
        await Deno.readTextFile(join(dir, sandbox, "runtime", "tool")),
        "#!/bin/sh\necho tool\n",
      );
      assert((await Deno.stat(join(dir, sandbox, "tool.tar.gz"))).isFile, "the archive stays");
      assertEquals((await Deno.stat(join(dir, sandbox, "prog"))).mode! & 0o777, 0o755);
    }
    assertEquals(served, ["/a/1/tool.tar.gz", "/a/2/prog"], "each cached URI downloaded once");
    assertEquals(cache.downloads, 2);
    // Another user has a cache entry of their own, as in Mesos.
    await fetchUri(uris[1]!, join(dir, "s4"), { cache, user: "other" });
    assertEquals(cache.downloads, 3);
    // Without `cache`, every fetch downloads.
    await fetchUri({ value: `${base}/a/2/prog`, executable: true }, join(dir, "s5"), { cache });
    await fetchUri({ value: `${base}/a/2/prog`, executable: true }, join(dir, "s6"), { cache });
    assertEquals(served.filter((p) => p === "/a/2/prog").length, 4);
    // extract: false leaves the archive packed.
    await fetchUri({ value: `${base}/a/1/tool.tar.gz`, extract: false }, join(dir, "s7"));
    await Deno.stat(join(dir, "s7", "runtime")).then(
      () => assert(false, "not extracted"),
      () => {},
    );
    // A failed download names the URI and caches nothing.
    const error = await fetchUri({ value: `${base}/missing`, cache: true }, join(dir, "s8"), {
      cache,
    }).catch((e) => e);
    assertMatch(error.message, /^Cannot fetch "http:\/\/127\.0\.0\.1:\d+\/missing": HTTP 404$/);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the fetcher cache drops its least recently used files past its size", async () => {
  const dir = await tempDir("fetcher-lru");
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response(new Uint8Array(1000)),
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const cache = new FetcherCache(join(dir, "cache"), 2500);
  try {
    for (const name of ["a", "b", "a", "c"]) {
      await fetchUri({ value: `${base}/${name}`, cache: true }, join(dir, "s"), { cache });
    }
    assertEquals(cache.downloads, 3);
    const left = [];
    for await (const e of Deno.readDir(join(dir, "cache"))) left.push(e.name.split("-").pop());
    assertEquals(left.sort(), ["a", "c"], "b, the least recently used, went");
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the fetcher downloads streamed bodies, follows redirects and names a URI whose server hangs up", async () => {
  const dir = await tempDir("fetcher-http");
  const big = new Uint8Array(300_000).map((_, i) => i % 251);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/streamed") {
      // No length: the body goes out chunked, in several pieces.
      return new Response(
        new ReadableStream({
          start(controller) {
            for (let at = 0; at < big.length; at += 70_000) {
              controller.enqueue(big.slice(at, at + 70_000));
            }
            controller.close();
          },
        }),
      );
    }
    if (path === "/moved") return Response.redirect(`${new URL(req.url).origin}/streamed`, 302);
    return new Response("no", { status: 404 });
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    const streamed = await fetchUri({ value: `${base}/streamed?x=1` }, join(dir, "s1"));
    assertEquals(await Deno.readFile(streamed), big);
    const moved = await fetchUri({ value: `${base}/moved`, output_file: "got" }, join(dir, "s2"));
    assertEquals(await Deno.readFile(moved), big);
    // A server that hangs up without answering.
    const rude = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const rudePort = (rude.addr as Deno.NetAddr).port;
    const hangingUp = (async () => {
      for await (const conn of rude) conn.close();
    })().catch(() => {});
    const error = await fetchUri({ value: `http://127.0.0.1:${rudePort}/x` }, join(dir, "s3"))
      .catch((e) => e);
    rude.close();
    await hangingUp;
    assertMatch(
      error.message,
      new RegExp(`^Cannot fetch "http://127\\.0\\.0\\.1:${rudePort}/x": `),
    );
    assertEquals(error.message.split("\n").length, 1);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
