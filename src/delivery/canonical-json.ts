/**
 * Canonical JSON: the exact text of Python's
 * `json.dumps(json.loads(text), separators=(",", ":"), sort_keys=True)`, which is what pyfly signs.
 *
 * Decisions (see the tests for each):
 * - NaN, Infinity and -Infinity literals are accepted and written back, as Python does; a float
 *   literal that overflows (1e400) becomes Infinity, as Python's float() makes it inf. With
 *   `{ strict: true }` (what the sidecar uses for events) all four are refused instead: they are not
 *   RFC 8259 JSON, most receivers' parsers reject them, and a signature over a body the receiver
 *   cannot read helps nobody; the record is dead-lettered where its producer can be found.
 * - Integers keep every digit, but more than 4300 digits is rejected: Python 3.11's default
 *   int_max_str_digits makes json.loads raise for those, so no pyfly receiver could handle them.
 * - Nesting deeper than MAX_DEPTH is rejected. Python raises RecursionError just under 1000 levels
 *   (less inside a framework's call stack), so anything accepted here also loads in Python.
 * - A string input must be well-formed UTF-16: a lone surrogate can't come from UTF-8 bytes, and
 *   Python would not merge it with an adjacent escaped half, so the key order could differ.
 *   Lone surrogates written as \u escapes are fine and echoed as Python does.
 * - Bytes input must be UTF-8 (a leading BOM is dropped, as json.loads(bytes) does); a string input
 *   with a leading BOM is rejected, as json.loads(str) does.
 * - Fast path: producers such as pyfly already send this exact form, so one pass first checks whether
 *   the input is canonical as it stands and, if so, returns it without parsing (for bytes input, a
 *   view on the same memory). It only answers yes or no and never throws: anything it can't vouch
 *   for goes to the parser, which alone decides errors, so they are the same either way.
 * Error offsets count UTF-16 code units of the decoded text (bytes for invalid UTF-8).
 */
import { isUtf8 } from "node:buffer";
import { compareCodePoints } from "../shared/code-points.js";
import { afterJsonWhitespace } from "../shared/lossless-json.js";
import { SidecarError } from "../shared/errors.js";

export const MAX_DEPTH = 512;
/** Python 3.11 `sys.int_info.default_max_str_digits`. */
export const MAX_INT_DIGITS = 4300;

export class CanonicalJsonError extends SidecarError {
  constructor(
    readonly reason: string,
    readonly offset: number,
  ) {
    super("INVALID_JSON", `${reason} at offset ${offset}`);
  }
}

export interface CanonicalOptions {
  /** Refuse NaN, Infinity, -Infinity and numbers that overflow a double (not RFC 8259 JSON). */
  strict?: boolean;
  /**
   * `false` skips the fast path and always parses: for tests and benchmarks that compare the two.
   * The result is the same either way.
   */
  fastPath?: boolean;
}

/** The canonical text. The output is always ASCII. */
export function canonicalizeJson(input: string | Uint8Array, options: CanonicalOptions = {}): string {
  if (typeof input !== "string") return canonicalizeJsonBytes(input, options).toString("latin1");
  // A canonical string is its own answer: no copy back from bytes.
  if (options.fastPath !== false && canonicalAscii(input) !== undefined) return input;
  return parse(input, options.strict ?? false).toString("latin1");
}

/**
 * The canonical text as bytes, ready to sign and send (ASCII, so UTF-8 and Latin-1 agree).
 * The returned Buffer may be a view on a larger allocation; for bytes input that is already
 * canonical it is a view on the input itself, so changing the input changes it.
 */
export function canonicalizeJsonBytes(input: string | Uint8Array, options: CanonicalOptions = {}): Buffer {
  const fast = options.fastPath !== false;
  const strict = options.strict ?? false;
  if (typeof input === "string") return (fast ? canonicalAscii(input) : undefined) ?? parse(input, strict);
  const bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  return fast && new CanonicalCheck(bytes).document() ? bytes : parse(bytes, strict);
}

/** The string's bytes if it is already canonical. */
function canonicalAscii(input: string): Buffer | undefined {
  const bytes = Buffer.from(input, "utf8");
  // Equal lengths mean no character above 0x7F: these are the string's characters, one a byte.
  return bytes.length === input.length && new CanonicalCheck(bytes).document() ? bytes : undefined;
}

/** The slow path, the single source of truth (and of errors). */
function parse(input: string | Buffer, strict: boolean): Buffer {
  let text: string;
  if (typeof input === "string") {
    if (input.charCodeAt(0) === 0xfeff) throw new CanonicalJsonError("Unexpected UTF-8 BOM", 0);
    if (!(input as unknown as { isWellFormed(): boolean }).isWellFormed()) {
      throw new CanonicalJsonError("Lone surrogate in input text", loneSurrogateAt(input));
    }
    text = input;
  } else {
    if (!isUtf8(input)) throw new CanonicalJsonError("Invalid UTF-8", invalidUtf8At(input));
    const bom = input.length >= 3 && input[0] === 0xef && input[1] === 0xbb && input[2] === 0xbf;
    text = input.toString("utf8", bom ? 3 : 0);
  }
  return new Parser(text, strict).document();
}

/** Python's `repr(float)`: shortest round-trip digits, exponent form when exp < -4 or exp >= 16. */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "Infinity" : "-Infinity";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const abs = Math.abs(x);
  // In this range both write plain decimals with the same digits; Python adds ".0" to integers.
  if (abs >= 1e-4 && abs < 1e16) return Number.isInteger(x) ? String(x) + ".0" : String(x);
  const sign = x < 0 ? "-" : "";
  // String() gives the same shortest digits as Python's repr, only laid out differently.
  const s = String(abs);
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

const enum C {
  Tab = 0x09,
  Lf = 0x0a,
  Cr = 0x0d,
  Space = 0x20,
  Quote = 0x22,
  Plus = 0x2b,
  Comma = 0x2c,
  Minus = 0x2d,
  Dot = 0x2e,
  Zero = 0x30,
  One = 0x31,
  Nine = 0x39,
  Colon = 0x3a,
  E = 0x45,
  I = 0x49,
  N = 0x4e,
  LBracket = 0x5b,
  Backslash = 0x5c,
  RBracket = 0x5d,
  LowerA = 0x61,
  LowerE = 0x65,
  F = 0x66,
  LowerN = 0x6e,
  T = 0x74,
  U = 0x75,
  LBrace = 0x7b,
  RBrace = 0x7d,
}

// Second byte of the two-character escapes Python writes, by code unit.
const SHORT_ESCAPES = new Map([
  [0x22, 0x22],
  [0x5c, 0x5c],
  [0x0a, 0x6e],
  [0x0d, 0x72],
  [0x09, 0x74],
  [0x08, 0x62],
  [0x0c, 0x66],
]);
const SHORT_ESCAPE_LETTERS = new Set(SHORT_ESCAPES.values());
const HEX = Buffer.from("0123456789abcdef", "latin1");
// Largest write of one step: a \uXXXX escape, or a float repr.
const SLACK = 32;

/**
 * Recursive descent (bounded by MAX_DEPTH) writing the ASCII output straight into a byte buffer,
 * which avoids a string per token. An object's members are written in input order and, unless
 * already sorted, moved into key order (dropping earlier duplicates) when it closes.
 */
class Parser {
  private pos = 0;
  private out: Buffer;
  private n = 0;
  private scratch = Buffer.allocUnsafe(0);
  /** Decoded value of the last key read, and whether it has a unit >= 0xD800. */
  private key = "";
  private keyHasSurrogates = false;

  constructor(
    private readonly text: string,
    private readonly strict: boolean,
  ) {
    this.out = Buffer.allocUnsafe(text.length + (text.length >> 3) + 64);
  }

  document(): Buffer {
    this.skipWs();
    this.value(0);
    this.skipWs();
    if (this.pos !== this.text.length) this.fail("Extra data");
    return this.out.subarray(0, this.n);
  }

  private fail(reason: string, at = this.pos): never {
    throw new CanonicalJsonError(reason, at);
  }

  private reserve(bytes: number): void {
    if (this.n + bytes <= this.out.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.n + bytes));
    this.out.copy(bigger, 0, 0, this.n);
    this.out = bigger;
  }

  private byte(b: number): void {
    this.reserve(1);
    this.out[this.n++] = b;
  }

  private ascii(s: string): void {
    this.reserve(s.length);
    if (s.length > 32) {
      this.n += this.out.write(s, this.n, "latin1");
      return;
    }
    const out = this.out;
    let n = this.n;
    for (let i = 0; i < s.length; i++) out[n++] = s.charCodeAt(i);
    this.n = n;
  }

  private skipWs(): void {
    this.pos = afterJsonWhitespace(this.text, this.pos);
  }

  private value(depth: number): void {
    const c = this.text.charCodeAt(this.pos);
    switch (c) {
      case C.Quote:
        return this.string(false);
      case C.LBrace:
        return this.object(depth + 1);
      case C.LBracket:
        return this.array(depth + 1);
      case C.T:
        return this.literal("true");
      case C.F:
        return this.literal("false");
      case C.LowerN:
        return this.literal("null");
      case C.N:
        return this.literal("NaN");
      case C.I:
        return this.literal("Infinity");
      default:
        if (c === C.Minus || (c >= C.Zero && c <= C.Nine)) return this.number();
        return this.fail("Expecting value");
    }
  }

  private literal(word: string): void {
    if (!this.text.startsWith(word, this.pos)) this.fail("Expecting value");
    if (this.strict && (word === "NaN" || word === "Infinity")) this.fail(`${word} is not JSON (RFC 8259)`);
    this.pos += word.length;
    this.ascii(word);
  }

  private enter(depth: number, open: number): void {
    if (depth > MAX_DEPTH) this.fail(`JSON nested deeper than ${MAX_DEPTH} levels`);
    this.byte(open);
    this.pos++;
    this.skipWs();
  }

  private array(depth: number): void {
    this.enter(depth, C.LBracket);
    const t = this.text;
    if (t.charCodeAt(this.pos) !== C.RBracket) {
      for (;;) {
        this.value(depth);
        this.skipWs();
        const c = t.charCodeAt(this.pos);
        if (c === C.RBracket) break;
        if (c !== C.Comma) this.fail("Expecting ',' delimiter");
        this.byte(C.Comma);
        this.pos++;
        this.skipWs();
      }
    }
    this.pos++;
    this.byte(C.RBracket);
  }

  private object(depth: number): void {
    this.enter(depth, C.LBrace);
    const t = this.text;
    if (t.charCodeAt(this.pos) === C.RBrace) {
      this.pos++;
      this.byte(C.RBrace);
      return;
    }
    const base = this.n;
    const keys: string[] = [];
    const starts: number[] = [];
    const ends: number[] = [];
    let sorted = true;
    let surrogates = false;
    for (;;) {
      if (t.charCodeAt(this.pos) !== C.Quote) this.fail("Expecting property name enclosed in double quotes");
      starts.push(this.n);
      this.string(true);
      const key = this.key;
      surrogates ||= this.keyHasSurrogates;
      const prev = keys[keys.length - 1];
      if (sorted && prev !== undefined) sorted = surrogates ? compareCodePoints(prev, key) < 0 : prev < key;
      keys.push(key);
      this.skipWs();
      if (t.charCodeAt(this.pos) !== C.Colon) this.fail("Expecting ':' delimiter");
      this.pos++;
      this.byte(C.Colon);
      this.skipWs();
      this.value(depth);
      ends.push(this.n);
      this.skipWs();
      const c = t.charCodeAt(this.pos);
      if (c === C.RBrace) break;
      if (c !== C.Comma) this.fail("Expecting ',' delimiter");
      this.byte(C.Comma);
      this.pos++;
      this.skipWs();
    }
    this.pos++;
    if (!sorted) this.sortMembers(base, keys, starts, ends, surrogates);
    this.byte(C.RBrace);
  }

  private sortMembers(base: number, keys: string[], starts: number[], ends: number[], surrogates: boolean): void {
    const before = surrogates
      ? (a: number, b: number) => compareCodePoints(keys[a]!, keys[b]!) < 0
      : (a: number, b: number) => keys[a]! < keys[b]!;
    let order: number[];
    if (keys.length <= 16) {
      // Insertion sort for the usual few members; stable, like Array.sort.
      order = [0];
      for (let i = 1; i < keys.length; i++) {
        let j = i;
        while (j > 0 && before(i, order[j - 1]!)) j--;
        order.splice(j, 0, i);
      }
    } else {
      order = keys.map((_, i) => i).sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : a - b));
    }
    // Stability keeps equal keys in input order, so the last (the one json.loads keeps) is last.
    const len = this.n - base;
    if (this.scratch.length < len) this.scratch = Buffer.allocUnsafe(Math.max(len, 2 * this.scratch.length));
    const tmp = this.scratch;
    const out = this.out;
    out.copy(tmp, 0, base, this.n);
    let w = base;
    for (let j = 0; j < order.length; j++) {
      const i = order[j]!;
      const next = order[j + 1];
      if (next !== undefined && keys[next] === keys[i]) continue;
      if (w !== base) out[w++] = C.Comma;
      const from = starts[i]! - base;
      const to = ends[i]! - base;
      if (to - from > 64) w += tmp.copy(out, w, from, to);
      else for (let k = from; k < to; k++) out[w++] = tmp[k]!;
    }
    this.n = w;
  }

  /** Writes the string's ensure_ascii form; for a key, leaves its decoded value in this.key. */
  private string(isKey: boolean): void {
    const t = this.text;
    const start = this.pos;
    let p = start + 1;
    this.byte(C.Quote);
    let out = this.out;
    let n = this.n;
    let limit = out.length - SLACK;
    let decoded = ""; // for keys: the text up to `run`, escapes decoded
    let run = p;
    let surrogates = false;
    for (;;) {
      if (n > limit) {
        this.n = n;
        this.reserve(SLACK * 2);
        out = this.out;
        limit = out.length - SLACK;
      }
      let c = t.charCodeAt(p);
      if (c >= C.Space && c <= 0x7e && c !== C.Quote && c !== C.Backslash) {
        out[n++] = c;
        p++;
        continue;
      }
      if (c === C.Quote) break;
      if (c !== c) this.fail("Unterminated string", start); // NaN: past the end
      if (c < C.Space) this.fail("Invalid control character", p);
      if (c === C.Backslash) {
        const at = p;
        c = this.escape(p);
        p += t.charCodeAt(p + 1) === C.U ? 6 : 2;
        if (isKey) {
          decoded += t.slice(run, at) + String.fromCharCode(c);
          run = p;
        }
        if (c >= C.Space && c <= 0x7e && c !== C.Quote && c !== C.Backslash) {
          out[n++] = c;
          continue;
        }
      } else {
        p++;
      }
      if (c >= 0xd800) surrogates = true;
      out[n++] = C.Backslash;
      const short = SHORT_ESCAPES.get(c);
      if (short !== undefined) {
        out[n++] = short;
      } else {
        out[n++] = C.U;
        out[n++] = HEX[c >> 12]!;
        out[n++] = HEX[(c >> 8) & 15]!;
        out[n++] = HEX[(c >> 4) & 15]!;
        out[n++] = HEX[c & 15]!;
      }
    }
    this.n = n;
    this.byte(C.Quote);
    this.pos = p + 1;
    if (isKey) {
      // A JS string merges an escaped high+low pair into one character, as Python does; any
      // other lone half stays a lone half in both.
      this.key = run === start + 1 ? t.slice(run, p) : decoded + t.slice(run, p);
      this.keyHasSurrogates = surrogates;
    }
  }

  /** Decodes the escape whose backslash is at p to a UTF-16 code unit. */
  private escape(p: number): number {
    const t = this.text;
    switch (t.charCodeAt(p + 1)) {
      case C.Quote:
        return C.Quote;
      case C.Backslash:
        return C.Backslash;
      case 0x2f:
        return 0x2f;
      case 0x62:
        return 0x08;
      case C.F:
        return 0x0c;
      case C.LowerN:
        return C.Lf;
      case 0x72:
        return C.Cr;
      case C.T:
        return C.Tab;
      case C.U: {
        const h = t.slice(p + 2, p + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(h)) this.fail("Invalid \\uXXXX escape", p + 1);
        return parseInt(h, 16);
      }
      default:
        if (p + 1 >= t.length) this.fail("Unterminated string", p);
        return this.fail("Invalid \\escape", p);
    }
  }

  private number(): void {
    const t = this.text;
    const start = this.pos;
    let p = start;
    if (t.charCodeAt(p) === C.Minus) {
      p++;
      if (t.charCodeAt(p) === C.I) {
        if (!t.startsWith("Infinity", p)) this.fail("Expecting value", start);
        if (this.strict) this.fail("-Infinity is not JSON (RFC 8259)", start);
        this.pos = p + 8;
        return this.ascii("-Infinity");
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
      return this.ascii(token === "-0" ? "0" : token);
    }
    const value = Number(token);
    if (this.strict && !Number.isFinite(value)) this.fail(`${token} overflows a double (JSON numbers must be finite here)`, start);
    this.ascii(pythonFloatRepr(value));
  }
}

/**
 * The fast path: whether the bytes are exactly what Parser would write for them, in one pass that
 * writes nothing. Never throws; whatever it can't vouch for is a no. NaN, the infinities and floats
 * that overflow are all a no, and they are all strict mode refuses, so a yes holds in either mode.
 */
class CanonicalCheck {
  private pos = 0;
  /** Whether the last string read had an escape. */
  private escaped = false;

  constructor(private readonly b: Buffer) {}

  document(): boolean {
    return this.value(0) && this.pos === this.b.length;
  }

  private value(depth: number): boolean {
    switch (this.b[this.pos]) {
      case C.Quote:
        return this.string();
      case C.LBrace:
        return this.object(depth + 1);
      case C.LBracket:
        return this.array(depth + 1);
      case C.T:
        return this.literal("true");
      case C.F:
        return this.literal("false");
      case C.LowerN:
        return this.literal("null");
      default:
        return this.number();
    }
  }

  private literal(word: string): boolean {
    const b = this.b;
    const p = this.pos;
    for (let i = 0; i < word.length; i++) if (b[p + i] !== word.charCodeAt(i)) return false;
    this.pos = p + word.length;
    return true;
  }

  private array(depth: number): boolean {
    if (depth > MAX_DEPTH) return false;
    const b = this.b;
    if (b[++this.pos] !== C.RBracket) {
      for (;;) {
        if (!this.value(depth)) return false;
        const c = b[this.pos];
        if (c === C.RBracket) break;
        if (c !== C.Comma) return false;
        this.pos++;
      }
    }
    this.pos++;
    return true;
  }

  private object(depth: number): boolean {
    if (depth > MAX_DEPTH) return false;
    const b = this.b;
    if (b[++this.pos] !== C.RBrace) {
      let prevStart = -1;
      let prevEnd = -1;
      let prevEscaped = false;
      for (;;) {
        const start = this.pos;
        if (b[start] !== C.Quote || !this.string()) return false;
        const end = this.pos;
        const escaped = this.escaped;
        // Strictly ascending also rules out duplicates, whose earlier members the parser drops.
        if (prevStart >= 0 && !this.keyBefore(prevStart, prevEnd, start, end, prevEscaped || escaped)) return false;
        prevStart = start;
        prevEnd = end;
        prevEscaped = escaped;
        if (b[this.pos] !== C.Colon) return false;
        this.pos++;
        if (!this.value(depth)) return false;
        const c = b[this.pos];
        if (c === C.RBrace) break;
        if (c !== C.Comma) return false;
        this.pos++;
      }
    }
    this.pos++;
    return true;
  }

  /** Whether the key at [a, aEnd) sorts before the one at [k, kEnd), both quoted, as the parser sorts. */
  private keyBefore(a: number, aEnd: number, k: number, kEnd: number, escaped: boolean): boolean {
    const b = this.b;
    if (escaped) {
      // Rare enough to decode: the escapes are checked canonical, so plain JSON strings.
      const prev = JSON.parse(b.toString("latin1", a, aEnd)) as string;
      const key = JSON.parse(b.toString("latin1", k, kEnd)) as string;
      return compareCodePoints(prev, key) < 0;
    }
    // Printable ASCII without escapes: each byte is the code point. The quotes stay out of it.
    const aLen = aEnd - a - 2;
    const kLen = kEnd - k - 2;
    const n = Math.min(aLen, kLen);
    for (let i = 1; i <= n; i++) {
      const x = b[a + i]!;
      const y = b[k + i]!;
      if (x !== y) return x < y;
    }
    return aLen < kLen;
  }

  /** Reads a string, setting this.escaped. */
  private string(): boolean {
    const b = this.b;
    let p = this.pos + 1;
    let escaped = false;
    for (;;) {
      const c = b[p];
      if (c === undefined) return false;
      if (c >= C.Space && c <= 0x7e && c !== C.Quote && c !== C.Backslash) {
        p++;
        continue;
      }
      if (c === C.Quote) break;
      // Control characters, DEL and non-ASCII are written as escapes.
      if (c !== C.Backslash) return false;
      escaped = true;
      const e = b[p + 1];
      if (e === C.U) {
        if (!this.canonicalUnicodeEscape(p + 2)) return false;
        p += 6;
      } else if (e !== undefined && SHORT_ESCAPE_LETTERS.has(e)) {
        p += 2;
      } else {
        return false; // "\/" is written as "/", anything else is invalid
      }
    }
    this.pos = p + 1;
    this.escaped = escaped;
    return true;
  }

  /** Whether the four hex digits at p are how the parser writes the code unit they stand for. */
  private canonicalUnicodeEscape(p: number): boolean {
    let unit = 0;
    for (let i = p; i < p + 4; i++) {
      const c = this.b[i];
      if (c === undefined) return false;
      let digit: number;
      if (c >= C.Zero && c <= C.Nine) digit = c - C.Zero;
      else if (c >= C.LowerA && c <= C.F) digit = c - C.LowerA + 10;
      else return false;
      unit = (unit << 4) | digit;
    }
    // Printable ASCII is written as itself (quote and backslash as short escapes), and so are the
    // control characters that have a short escape.
    return unit > 0x7e || (unit < C.Space && !SHORT_ESCAPES.has(unit));
  }

  private number(): boolean {
    const b = this.b;
    const start = this.pos;
    let p = start;
    if (b[p] === C.Minus) p++;
    const intStart = p;
    let c = b[p];
    if (c === C.Zero) c = b[++p];
    else if (c !== undefined && c >= C.One && c <= C.Nine) {
      do c = b[++p];
      while (c !== undefined && c >= C.Zero && c <= C.Nine);
    } else return false;
    if (c !== C.Dot && c !== C.LowerE && c !== C.E) {
      // The parser writes "-0" as "0" and refuses more digits than Python converts.
      if (p - intStart > MAX_INT_DIGITS || (p - start === 2 && b[start] === C.Minus && b[intStart] === C.Zero)) return false;
      this.pos = p;
      return true;
    }
    // Take the rest greedily: whatever it is, only the exact repr of its value is canonical. That
    // also refuses overflow to inf, which the parser writes as "Infinity".
    while (
      c !== undefined &&
      ((c >= C.Zero && c <= C.Nine) || c === C.Dot || c === C.LowerE || c === C.E || c === C.Plus || c === C.Minus)
    ) {
      c = b[++p];
    }
    const token = b.toString("latin1", start, p);
    if (pythonFloatRepr(Number(token)) !== token) return false;
    this.pos = p;
    return true;
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
      c < 0x80
        ? [0, 0, 0]
        : c >= 0xc2 && c <= 0xdf
          ? [1, 0x80, 0xbf]
          : c === 0xe0
            ? [2, 0xa0, 0xbf]
            : c === 0xed
              ? [2, 0x80, 0x9f]
              : c >= 0xe1 && c <= 0xef
                ? [2, 0x80, 0xbf]
                : c === 0xf0
                  ? [3, 0x90, 0xbf]
                  : c === 0xf4
                    ? [3, 0x80, 0x8f]
                    : c >= 0xf1 && c <= 0xf3
                      ? [3, 0x80, 0xbf]
                      : [-1, 0, 0];
    if (n < 0) return i;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n + 1;
  }
  return -1;
}
