/** The file path of a `file:` URL; `undefined` for any other URL. */
export function fromFileUrl(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== "file:") return undefined;
  return decodeURIComponent(parsed.pathname);
}
