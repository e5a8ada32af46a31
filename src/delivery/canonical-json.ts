/**
 * Canonical JSON: the exact text of Python's
 * `json.dumps(json.loads(text), separators=(",", ":"), sort_keys=True)`, which is what pyfly signs.
 *
 * Decisions (see the tests for each):
 * - NaN, Infinity and -Infinity literals are accepted and written back, as Python does; a float
 *   literal that overflows (1e400) becomes Infinity, as Python's float() makes it inf.
 * - Integers keep every digit, but more than 4300 digits is rejected: Python 3.11's default
 *   int_max_str_digits makes json.loads raise for those, so no pyfly receiver could handle them.
 * - Nesting deeper than MAX_DEPTH is rejected. Python raises RecursionError just under 1000 levels
 *   (less inside a framework's call stack), so anything accepted here also loads in Python.
 * - A string input must be well-formed UTF-16: a lone surrogate can't come from UTF-8 bytes, and
 *   Python would not merge it with an adjacent escaped half, so the key order could differ.
 *   Lone surrogates written as \u escapes are fine and echoed as Python does.
 * - Bytes input must be UTF-8 (a leading BOM is dropped, as json.loads(bytes) does); a string input
 *   with a leading BOM is rejected, as json.loads(str) does.
 * Error offsets count UTF-16 code units of the decoded text (bytes for invalid UTF-8).
 */
import { isUtf8 } from "node:buffer";

export const MAX_DEPTH = 512;
/** Python 3.11 `sys.int_info.default_max_str_digits`. */
export const MAX_INT_DIGITS = 4300;

export class CanonicalJsonError extends Error {
  constructor(
    readonly reason: string,
    readonly offset: number,
  ) {
    super(`${reason} at offset ${offset}`);
    this.name = "CanonicalJsonError";
  }
}

export function canonicalizeJson(input: string | Uint8Array): string {
  let text: string;
  if (typeof input === "string") {
    if (input.charCodeAt(0) === 0xfeff) throw new CanonicalJsonError("Unexpected UTF-8 BOM", 0);
    if (!(input as unknown as { isWellFormed(): boolean }).isWellFormed()) throw new CanonicalJsonError("Lone surrogate in input text", loneSurrogateAt(input));
    text = input;
  } else {
    const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    if (!isUtf8(buf)) throw new CanonicalJsonError("Invalid UTF-8", invalidUtf8At(buf));
    const bom = buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf;
    text = buf.toString("utf8", bom ? 3 : 0);
  }
  return new Parser(text).document();
}

// 0x20..0x7e except '"' and '\\' are written as they are; everything else is escaped.
const NEEDS_ESCAPE = /[^\x20\x21\x23-\x5b\x5d-\x7e]/g;
const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
};
function escapeChar(ch: string): string {
  return SHORT_ESCAPES[ch] ?? "\\u" + ch.charCodeAt(0).toString(16).padStart(4, "0");
}

/** Python's ensure_ascii string encoding; astral characters come out as surrogate pairs. */
export function pythonAsciiString(s: string): string {
  return '"' + s.replace(NEEDS_ESCAPE, escapeChar) + '"';
}

/** Python's `repr(float)`: shortest round-trip digits, exponent form when exp < -4 or exp >= 16. */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "Infinity" : "-Infinity";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  // String() gives the same shortest digits as Python's repr, only laid out differently.
  const s = String(Math.abs(x));
  let digits: string;
  let exp: number; // x = d.ddd * 10^exp
  const e = s.indexOf("e");
  if (e >= 0) {
    digits = s.slice(0, e).replace(".", "");
    exp = Number(s.slice(e + 1));
  } else {
    const dot = s.indexOf(".");
    const int = dot < 0 ? s : s.slice(0, dot);
    const frac = dot < 0 ? "" : s.slice(dot + 1);
    if (int !== "0") {
      digits = int + frac;
      exp = int.length - 1;
    } else {
      const nz = frac.search(/[1-9]/);
      digits = frac.slice(nz);
      exp = -nz - 1;
    }
  }
  digits = digits.replace(/0+$/, "");
  if (exp < -4 || exp >= 16) {
    const mant = digits.length > 1 ? digits[0] + "." + digits.slice(1) : digits;
    return `${sign}${mant}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
  if (digits.length <= exp + 1) return `${sign}${digits}${"0".repeat(exp + 1 - digits.length)}.0`;
  return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
}

/**
 * Python compares str by code point; JS `<` compares UTF-16 units, which puts astral characters
 * (D800..DFFF units) before U+E000..U+FFFF. Only used when a key has a unit >= 0xD800.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (i === n) return a.length - b.length;
  // A shared high surrogate just before the difference starts the code point that differs.
  const j = i > 0 && isHighSurrogate(a.charCodeAt(i - 1)) ? i - 1 : i;
  let ca = a.codePointAt(j)!;
  let cb = b.codePointAt(j)!;
  if (ca === cb) {
    ca = a.codePointAt(i)!;
    cb = b.codePointAt(i)!;
  }
  return ca - cb;
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

interface Entry {
  key: string;
  out: string;
}
const byUnits = (a: Entry, b: Entry): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
const byCodePoints = (a: Entry, b: Entry): number => compareCodePoints(a.key, b.key);

const enum C {
  Tab = 0x09, Lf = 0x0a, Cr = 0x0d, Space = 0x20, Quote = 0x22, Plus = 0x2b, Comma = 0x2c,
  Minus = 0x2d, Dot = 0x2e, Zero = 0x30, One = 0x31, Nine = 0x39, Colon = 0x3a, E = 0x45,
  I = 0x49, N = 0x4e, LBracket = 0x5b, Backslash = 0x5c, RBracket = 0x5d, LowerE = 0x65,
  F = 0x66, LowerN = 0x6e, T = 0x74, U = 0x75, LBrace = 0x7b, RBrace = 0x7d,
}

class Parser {
  private pos = 0;
  /** Decoded value of the string parsed last, and whether it has a unit >= 0xD800. */
  private key = "";
  private keyHasSurrogates = false;
  private escaped = "";

  constructor(private readonly text: string) {}

  document(): string {
    this.skipWs();
    const out = this.value(0);
    this.skipWs();
    if (this.pos !== this.text.length) this.fail("Extra data");
    return out;
  }

  private fail(reason: string, at = this.pos): never {
    throw new CanonicalJsonError(reason, at);
  }

  private skipWs(): void {
    const t = this.text;
    let p = this.pos;
    for (;;) {
      const c = t.charCodeAt(p);
      if (c !== C.Space && c !== C.Lf && c !== C.Cr && c !== C.Tab) break;
      p++;
    }
    this.pos = p;
  }

  private value(depth: number): string {
    const c = this.text.charCodeAt(this.pos);
    switch (c) {
      case C.Quote: return this.string();
      case C.LBrace: return this.object(depth + 1);
      case C.LBracket: return this.array(depth + 1);
      case C.T: return this.literal("true", "true");
      case C.F: return this.literal("false", "false");
      case C.LowerN: return this.literal("null", "null");
      case C.N: return this.literal("NaN", "NaN");
      case C.I: return this.literal("Infinity", "Infinity");
      default:
        if (c === C.Minus || (c >= C.Zero && c <= C.Nine)) return this.number();
        return this.fail("Expecting value");
    }
  }

  private literal(word: string, out: string): string {
    if (!this.text.startsWith(word, this.pos)) this.fail("Expecting value");
    this.pos += word.length;
    return out;
  }

  private enter(depth: number): void {
    if (depth > MAX_DEPTH) this.fail(`JSON nested deeper than ${MAX_DEPTH} levels`);
    this.pos++;
    this.skipWs();
  }

  private array(depth: number): string {
    this.enter(depth);
    const t = this.text;
    if (t.charCodeAt(this.pos) === C.RBracket) {
      this.pos++;
      return "[]";
    }
    let out = "[";
    for (;;) {
      out += this.value(depth);
      this.skipWs();
      const c = t.charCodeAt(this.pos++);
      if (c === C.RBracket) return out + "]";
      if (c !== C.Comma) this.fail("Expecting ',' delimiter", this.pos - 1);
      out += ",";
      this.skipWs();
    }
  }

  private object(depth: number): string {
    this.enter(depth);
    const t = this.text;
    if (t.charCodeAt(this.pos) === C.RBrace) {
      this.pos++;
      return "{}";
    }
    const entries: Entry[] = [];
    let surrogates = false;
    for (;;) {
      if (t.charCodeAt(this.pos) !== C.Quote) this.fail("Expecting property name enclosed in double quotes");
      const keyOut = this.string();
      const key = this.key;
      surrogates ||= this.keyHasSurrogates;
      this.skipWs();
      if (t.charCodeAt(this.pos) !== C.Colon) this.fail("Expecting ':' delimiter");
      this.pos++;
      this.skipWs();
      entries.push({ key, out: keyOut + ":" + this.value(depth) });
      this.skipWs();
      const c = t.charCodeAt(this.pos++);
      if (c === C.RBrace) break;
      if (c !== C.Comma) this.fail("Expecting ',' delimiter", this.pos - 1);
      this.skipWs();
    }
    // Stable sort keeps duplicates in input order; json.loads keeps the last value.
    if (entries.length > 1) entries.sort(surrogates ? byCodePoints : byUnits);
    let out = "{";
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (i + 1 < entries.length && entries[i + 1]!.key === e.key) continue;
      out += out.length === 1 ? e.out : "," + e.out;
    }
    return out + "}";
  }

  /** Returns the ensure_ascii form; leaves the decoded value in this.key. */
  private string(): string {
    const t = this.text;
    const start = this.pos;
    let p = start + 1;
    let c = t.charCodeAt(p);
    // Fast path: printable ASCII without escapes is its own canonical form.
    while (c >= C.Space && c <= 0x7e && c !== C.Quote && c !== C.Backslash) c = t.charCodeAt(++p);
    if (c === C.Quote) {
      this.pos = p + 1;
      this.key = t.slice(start + 1, p);
      this.keyHasSurrogates = false;
      return t.slice(start, p + 1);
    }
    let decoded = "";
    let run = start + 1;
    for (;;) {
      if (p >= t.length) this.fail("Unterminated string", start);
      if (c === C.Quote) break;
      if (c < C.Space) this.fail("Invalid control character", p);
      if (c === C.Backslash) {
        decoded += t.slice(run, p);
        p = this.escape(p);
        decoded += this.escaped;
        run = p;
      } else {
        p++;
      }
      c = t.charCodeAt(p);
    }
    decoded += t.slice(run, p);
    this.pos = p + 1;
    this.key = decoded;
    this.keyHasSurrogates = /[\ud800-\udfff]/.test(decoded);
    return pythonAsciiString(decoded);
  }

  /** Decodes the escape at p (the backslash) into this.escaped; returns the next position. */
  private escape(p: number): number {
    const t = this.text;
    const c = t.charCodeAt(p + 1);
    let ch: string;
    switch (c) {
      case C.Quote: ch = '"'; break;
      case C.Backslash: ch = "\\"; break;
      case 0x2f: ch = "/"; break;
      case 0x62: ch = "\b"; break;
      case C.F: ch = "\f"; break;
      case C.LowerN: ch = "\n"; break;
      case 0x72: ch = "\r"; break;
      case C.T: ch = "\t"; break;
      case C.U: {
        const unit = this.hex4(p + 2);
        // A JS string merges an escaped high+low pair into one character, as Python does;
        // any other lone half stays a lone half in both.
        this.escaped = String.fromCharCode(unit);
        return p + 6;
      }
      default:
        if (p + 1 >= t.length) this.fail("Unterminated string", p);
        return this.fail("Invalid \\escape", p);
    }
    this.escaped = ch;
    return p + 2;
  }

  private hex4(p: number): number {
    const h = this.text.slice(p, p + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) this.fail("Invalid \\uXXXX escape", p - 1);
    return parseInt(h, 16);
  }

  private number(): string {
    const t = this.text;
    const start = this.pos;
    let p = start;
    if (t.charCodeAt(p) === C.Minus) {
      p++;
      if (t.charCodeAt(p) === C.I) {
        if (!t.startsWith("Infinity", p)) this.fail("Expecting value", start);
        this.pos = p + 8;
        return "-Infinity";
      }
    }
    let c = t.charCodeAt(p);
    if (c === C.Zero) c = t.charCodeAt(++p);
    else if (c >= C.One && c <= C.Nine) {
      do c = t.charCodeAt(++p);
      while (c >= C.Zero && c <= C.Nine);
    } else this.fail("Expecting value", start);
    const intEnd = p;
    if (c === C.Dot) {
      const d = t.charCodeAt(p + 1);
      if (d >= C.Zero && d <= C.Nine) {
        p += 2;
        while ((c = t.charCodeAt(p)) >= C.Zero && c <= C.Nine) p++;
      }
    }
    if (c === C.LowerE || c === C.E) {
      // Python backtracks over an exponent without digits ("1e" is 1 followed by junk).
      let q = p + 1;
      const s = t.charCodeAt(q);
      if (s === C.Plus || s === C.Minus) q++;
      const digitsStart = q;
      while ((c = t.charCodeAt(q)) >= C.Zero && c <= C.Nine) q++;
      if (q > digitsStart) p = q;
    }
    this.pos = p;
    const token = t.slice(start, p);
    if (p === intEnd) {
      const digits = p - start - (t.charCodeAt(start) === C.Minus ? 1 : 0);
      if (digits > MAX_INT_DIGITS) this.fail(`Integer has more than ${MAX_INT_DIGITS} digits (Python's limit)`, start);
      return token === "-0" ? "0" : token;
    }
    return pythonFloatRepr(Number(token));
  }
}

function loneSurrogateAt(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c <= 0xdbff && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++;
    else return i;
  }
  return -1;
}

function invalidUtf8At(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const [n, lo, hi] =
      c < 0x80 ? [0, 0, 0] : c >= 0xc2 && c <= 0xdf ? [1, 0x80, 0xbf] : c === 0xe0 ? [2, 0xa0, 0xbf]
      : c === 0xed ? [2, 0x80, 0x9f] : c >= 0xe1 && c <= 0xef ? [2, 0x80, 0xbf] : c === 0xf0 ? [3, 0x90, 0xbf]
      : c === 0xf4 ? [3, 0x80, 0x8f] : c >= 0xf1 && c <= 0xf3 ? [3, 0x80, 0xbf] : [-1, 0, 0];
    if (n < 0) return i;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n + 1;
  }
  return -1;
}
