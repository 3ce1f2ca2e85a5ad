/**
 * A self-signed certificate for `localhost` and `127.0.0.1`, made by
 * `openssl` for one test.
 *
 * @module
 */
import { assert } from "./_assert.ts";

/** A certificate and its key, as PEM text and as files in `dir`. */
export interface TestCert {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

/** Makes a one-day self-signed certificate (an end-entity one, as TLS clients require) in `dir`. */
export async function makeTestCert(dir: string): Promise<TestCert> {
  const certFile = `${dir}/cert.pem`;
  const keyFile = `${dir}/key.pem`;
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-addext",
      "extendedKeyUsage=serverAuth",
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert(out.success, `openssl failed: ${new TextDecoder().decode(out.stderr)}`);
  return {
    cert: await Deno.readTextFile(certFile),
    key: await Deno.readTextFile(keyFile),
    certFile,
    keyFile,
  };
}
