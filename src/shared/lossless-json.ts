/**
 * A strict RFC 8259 parser that keeps every number as the text it was written with, so values past
 * a double's precision (20-digit ids, long decimals) stay exact for whoever reads them.
 *
 * Objects have a null prototype: a key such as "__proto__" or "constructor" is plain data and
 * never reaches Object.prototype. A duplicate key keeps the last value, as JSON.parse does.
 * Error offsets count UTF-16 code units.
 */
import { SidecarError } from "./errors.js";

/** A JSON number as spelled in the input. */
export class JsonNumber {
  constructor(readonly text: string) {}
}

export type LosslessValue = null | boolean | string | JsonNumber | LosslessValue[] | { [key: string]: LosslessValue };

/** The same bound as canonical JSON, so anything canonicalizeJson wrote can be read back. */
const MAX_DEPTH = 512;

export function parseLossless(text: string): LosslessValue {
  return new Parser(text).document();
}

/** The first position at or after `pos` that is not JSON whitespace; canonical JSON's parser skips it so too. */
export function afterJsonWhitespace(text: string, pos: number): number {
  let p = pos;
  for (;;) {
    const c = text.charCodeAt(p);
    if (c !== C.Space && c !== C.Lf && c !== C.Cr && c !== C.Tab) return p;
    p++;
  }
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
  Slash = 0x2f,
  Zero = 0x30,
  One = 0x31,
  Nine = 0x39,
  Colon = 0x3a,
  E = 0x45,
  LBracket = 0x5b,
  Backslash = 0x5c,
  RBracket = 0x5d,
  LowerB = 0x62,
  LowerE = 0x65,
  LowerF = 0x66,
  LowerN = 0x6e,
  LowerR = 0x72,
  LowerT = 0x74,
  LowerU = 0x75,
  LBrace = 0x7b,
  RBrace = 0x7d,
}

/** Recursive descent, bounded by MAX_DEPTH. */
class Parser {
  private pos = 0;

  constructor(private readonly text: string) {}

  document(): LosslessValue {
    this.skipWs();
    const value = this.value(0);
    this.skipWs();
    if (this.pos !== this.text.length) this.fail("Unexpected data after the JSON value");
    return value;
  }

  private fail(reason: string, at = this.pos): never {
    throw new SidecarError("INVALID_JSON", `${reason} at offset ${at}`);
  }

  private skipWs(): void {
    this.pos = afterJsonWhitespace(this.text, this.pos);
  }

  private value(depth: number): LosslessValue {
    const c = this.text.charCodeAt(this.pos);
    switch (c) {
      case C.Quote:
        return this.string();
      case C.LBrace:
        return this.object(depth + 1);
      case C.LBracket:
        return this.array(depth + 1);
      case C.LowerT:
        return this.literal("true", true);
      case C.LowerF:
        return this.literal("false", false);
      case C.LowerN:
        return this.literal("null", null);
      default:
        if (c === C.Minus || (c >= C.Zero && c <= C.Nine)) return this.number();
        return this.fail(c !== c ? "Unexpected end of input" : "Expecting a value");
    }
  }

  private literal<T extends LosslessValue>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail("Expecting a value");
    this.pos += word.length;
    return value;
  }

  private enter(depth: number): void {
    if (depth > MAX_DEPTH) this.fail(`JSON nested deeper than ${MAX_DEPTH} levels`);
    this.pos++;
    this.skipWs();
  }

  /** After a member: true when the container closes, false when a comma announces another member. */
  private closes(close: number): boolean {
    this.skipWs();
    const c = this.text.charCodeAt(this.pos);
    this.pos++;
    if (c === close) return true;
    if (c !== C.Comma) this.fail(`Expecting ',' or '${String.fromCharCode(close)}'`, this.pos - 1);
    this.skipWs();
    return false;
  }

  private array(depth: number): LosslessValue[] {
    this.enter(depth);
    const items: LosslessValue[] = [];
    if (this.text.charCodeAt(this.pos) === C.RBracket) {
      this.pos++;
      return items;
    }
    do items.push(this.value(depth));
    while (!this.closes(C.RBracket));
    return items;
  }

  private object(depth: number): { [key: string]: LosslessValue } {
    this.enter(depth);
    const t = this.text;
    const members = Object.create(null) as { [key: string]: LosslessValue };
    if (t.charCodeAt(this.pos) === C.RBrace) {
      this.pos++;
      return members;
    }
    do {
      if (t.charCodeAt(this.pos) !== C.Quote) this.fail("Expecting a property name in double quotes");
      const key = this.string();
      this.skipWs();
      if (t.charCodeAt(this.pos) !== C.Colon) this.fail("Expecting ':'");
      this.pos++;
      this.skipWs();
      members[key] = this.value(depth);
    } while (!this.closes(C.RBrace));
    return members;
  }

  private string(): string {
    const t = this.text;
    const start = this.pos;
    let p = start + 1;
    let run = p;
    let decoded = ""; // the text before `run`, escapes decoded; stays empty on the escape-free path
    for (;;) {
      const c = t.charCodeAt(p);
      if (c === C.Quote) break;
      if (c === C.Backslash) {
        decoded += t.slice(run, p) + this.escape(p);
        p += t.charCodeAt(p + 1) === C.LowerU ? 6 : 2;
        run = p;
      } else if (c >= C.Space) {
        p++;
      } else {
        this.fail(c !== c ? "Unterminated string" : "Invalid control character in string", c !== c ? start : p);
      }
    }
    this.pos = p + 1;
    // An escaped surrogate pair ends up as two adjacent halves, which is the astral character.
    return run === start + 1 ? t.slice(run, p) : decoded + t.slice(run, p);
  }

  /** The character that the escape whose backslash is at p stands for. */
  private escape(p: number): string {
    const t = this.text;
    switch (t.charCodeAt(p + 1)) {
      case C.Quote:
        return '"';
      case C.Backslash:
        return "\\";
      case C.Slash:
        return "/";
      case C.LowerB:
        return "\b";
      case C.LowerF:
        return "\f";
      case C.LowerN:
        return "\n";
      case C.LowerR:
        return "\r";
      case C.LowerT:
        return "\t";
      case C.LowerU: {
        let unit = 0;
        for (let i = p + 2; i < p + 6; i++) {
          const h = hexValue(t.charCodeAt(i));
          if (h < 0) this.fail("Invalid \\uXXXX escape", p);
          unit = (unit << 4) | h;
        }
        return String.fromCharCode(unit);
      }
      default:
        return this.fail(p + 1 >= t.length ? "Unterminated string" : "Invalid escape", p);
    }
  }

  private number(): JsonNumber {
    const t = this.text;
    const start = this.pos;
    let p = start;
    if (t.charCodeAt(p) === C.Minus) p++;
    let c = t.charCodeAt(p);
    if (c === C.Zero) {
      c = t.charCodeAt(++p);
      if (c >= C.Zero && c <= C.Nine) this.fail("Leading zeros are not allowed", start);
    } else if (c >= C.One && c <= C.Nine) {
      do c = t.charCodeAt(++p);
      while (c >= C.Zero && c <= C.Nine);
    } else {
      this.fail("Expecting a digit", p);
    }
    if (c === C.Dot) {
      p = this.digits(p + 1);
      c = t.charCodeAt(p);
    }
    if (c === C.LowerE || c === C.E) {
      c = t.charCodeAt(++p);
      p = this.digits(c === C.Plus || c === C.Minus ? p + 1 : p);
    }
    this.pos = p;
    return new JsonNumber(t.slice(start, p));
  }

  /** The end of the one or more digits that must start at p. */
  private digits(p: number): number {
    const t = this.text;
    const from = p;
    let c = t.charCodeAt(p);
    while (c >= C.Zero && c <= C.Nine) c = t.charCodeAt(++p);
    if (p === from) this.fail("Expecting a digit", p);
    return p;
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}
