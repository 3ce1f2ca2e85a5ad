/**
 * A resumable scanner of Redis replies (RESP2 and RESP3): it finds where each
 * complete top-level reply ends without decoding it, so bytes from a shared
 * server connection can be handed to the clients they belong to as views of
 * the read buffer.
 *
 * @module
 */

const CR = 13;
const LF = 10;

/** Finds the ends of complete replies in a byte stream fed chunk by chunk. */
export class ReplyScanner {
  /** Elements still expected by each open aggregate, innermost last. */
  #stack: number[] = [];
  /** Bytes of a bulk payload (CRLF included) still to skip. */
  #bulkLeft = 0;
  /** Type byte of a header being read across chunks (0: none). */
  #type = 0;
  /** Number parsed so far of a `$`/`*`-style header. */
  #num = 0;
  #neg = false;
  /** Skipping the rest of a line whose value is not needed. */
  #skipLine = false;
  /** Header digits done, waiting for the LF after CR. */
  #wantLf = false;

  /**
   * Scans `buf[start, end)` and writes the offset just after each complete
   * top-level reply into `ends`; returns how many it wrote. State carries
   * over to the next call for a reply cut by the chunk end.
   */
  scan(buf: Uint8Array, start: number, end: number, ends: number[]): number {
    let count = 0;
    let i = start;
    while (i < end) {
      if (this.#bulkLeft > 0) {
        const take = Math.min(this.#bulkLeft, end - i);
        i += take;
        this.#bulkLeft -= take;
        if (this.#bulkLeft === 0 && this.#done()) ends[count++] = i;
        continue;
      }
      if (this.#skipLine) {
        const lf = buf.indexOf(LF, i);
        if (lf < 0 || lf >= end) return count;
        i = lf + 1;
        this.#skipLine = false;
        this.#type = 0;
        if (this.#done()) ends[count++] = i;
        continue;
      }
      if (this.#type === 0) {
        const t = buf[i++]!;
        switch (t) {
          case 36: // $ bulk string
          case 42: // * array
          case 37: // % map (RESP3)
          case 126: // ~ set (RESP3)
          case 62: // > push (RESP3)
          case 61: // = verbatim (RESP3)
          case 33: // ! blob error (RESP3)
          case 124: // | attribute (RESP3)
            this.#type = t;
            this.#num = 0;
            this.#neg = false;
            this.#wantLf = false;
            break;
          default: // + - : _ , # ( and anything else: one line
            this.#type = t;
            this.#skipLine = true;
        }
        continue;
      }
      // Reading the number of a length header.
      if (this.#wantLf) {
        i++; // the LF
        this.#wantLf = false;
        const t = this.#type;
        this.#type = 0;
        const n = this.#neg ? -this.#num : this.#num;
        if (t === 36 || t === 61 || t === 33) {
          if (n < 0) {
            if (this.#done()) ends[count++] = i;
          } else {
            this.#bulkLeft = n + 2;
          }
        } else {
          const elements = t === 37 || t === 124 ? n * 2 : n;
          if (t === 124) {
            // An attribute precedes the reply it annotates: it is not an element.
            if (elements > 0) this.#stack.push(elements + 1);
          } else if (elements > 0) {
            this.#stack.push(elements);
          } else if (this.#done()) {
            ends[count++] = i;
          }
        }
        continue;
      }
      const c = buf[i++]!;
      if (c === CR) this.#wantLf = true;
      else if (c === 45) this.#neg = true;
      else this.#num = this.#num * 10 + (c - 48);
    }
    return count;
  }

  /** One element finished; true when that completed a top-level reply. */
  #done(): boolean {
    const stack = this.#stack;
    while (stack.length > 0) {
      const last = stack.length - 1;
      const left = stack[last]! - 1;
      if (left > 0) {
        stack[last] = left;
        return false;
      }
      stack.pop();
    }
    return true;
  }
}
