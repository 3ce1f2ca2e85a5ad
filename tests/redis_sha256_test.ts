/**
 * The executor's own SHA-256 against `node:crypto` and Web Crypto, on the
 * FIPS 180-4 examples and on every length around the padding boundaries.
 */
import { createHash } from "node:crypto";
import { assertEquals } from "./_assert.ts";
import { base64url, sha256 } from "../lib/redis/sha256.ts";
import { replicationSecret } from "../lib/redis/auth.ts";

const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

Deno.test("sha256 gives the FIPS 180-4 digests", () => {
  assertEquals(
    hex(sha256("")),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assertEquals(
    hex(sha256("abc")),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assertEquals(
    hex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
});

Deno.test("sha256 matches node:crypto and Web Crypto for 0 to 300 bytes and UTF-8 text", async () => {
  for (let n = 0; n <= 300; n++) {
    const data = new Uint8Array(n).map((_, i) => (i * 131 + n) & 0xff);
    const want = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
    assertEquals(hex(sha256(data)), hex(want), `${n} bytes`);
  }
  const text = "mrr-replication:ünïcödé ✓ 𝄞";
  assertEquals(base64url(sha256(text)), createHash("sha256").update(text).digest("base64url"));
});

Deno.test("the replication secret is the one node:crypto derived (older processes keep matching)", () => {
  const adminPassword = "Xy9_secret-admin-password-0123456789abcdefgh";
  assertEquals(
    replicationSecret({ password: "p".repeat(16), adminPassword }),
    createHash("sha256").update(`mrr-replication:${adminPassword}`).digest("base64url"),
  );
});
