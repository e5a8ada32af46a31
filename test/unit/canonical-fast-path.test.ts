import { describe, expect, it } from "vitest";
import {
  CanonicalJsonError,
  MAX_DEPTH,
  MAX_INT_DIGITS,
  canonicalizeJson,
  canonicalizeJsonBytes,
  type CanonicalOptions,
} from "../../src/delivery/canonical-json.js";

// The fast path is only observable by what it returns for bytes: the input's own memory.
function bytesOf(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "utf8")); // an ArrayBuffer of its own, outside Buffer's pool
}

function fastPathTakes(text: string, options: CanonicalOptions = {}): boolean {
  const input = bytesOf(text);
  const out = canonicalizeJsonBytes(input, options);
  return out.buffer === input.buffer && out.byteOffset === input.byteOffset && out.length === input.length;
}

// NaN and the infinities are written back as read, when not strict, but left to the slow path.
function hasNonFinite(canonical: string): boolean {
  return /NaN|Infinity/.test(canonical.replace(/"(?:[^"\\]|\\.)*"/g, '""'));
}

type Outcome = { text: string } | { reason: string; offset: number };

function outcome(run: () => Buffer | string): Outcome {
  try {
    const out = run();
    return { text: typeof out === "string" ? out : out.toString("latin1") };
  } catch (e) {
    if (!(e instanceof CanonicalJsonError)) throw e;
    return { reason: e.reason, offset: e.offset };
  }
}

/** Every entry point, with the fast path and without, gives the same text or the same error. */
function expectSameAsSlowPath(input: string | Uint8Array, strict: boolean): Outcome {
  const slow = outcome(() => canonicalizeJsonBytes(input, { strict, fastPath: false }));
  expect(outcome(() => canonicalizeJsonBytes(input, { strict }))).toEqual(slow);
  expect(outcome(() => canonicalizeJson(input, { strict }))).toEqual(slow);
  expect(outcome(() => canonicalizeJson(input, { strict, fastPath: false }))).toEqual(slow);
  return slow;
}

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random JSON text in every shape the parser accepts, most of it not canonical as written. */
function generator(seed: number) {
  const rnd = mulberry32(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const ws = () => (rnd() < 0.1 ? pick([" ", "\n", "\t ", "\r\n  "]) : "");
  const FLOATS = ["1e16", "1e-5", "-0.0", "0.1", "1.0", "1.5E5", "1e+16", "2.50", "5e-324", "1.7976931348623157e308", "0.0001", "1e22"];
  const number = (): string => {
    switch (int(6)) {
      case 0:
        return String(int(1000) - 500);
      case 1:
        return (rnd() < 0.5 ? "-" : "") + String(1 + int(9)) + Array.from({ length: int(40) }, () => int(10)).join("");
      case 2:
        return pick(FLOATS);
      case 3: {
        const x = (rnd() - 0.5) * 10 ** (int(50) - 25);
        return pick([String(x), x.toExponential(), x.toFixed(int(8)), x.toPrecision(1 + int(20))]);
      }
      case 4:
        return pick(["0", "-0", "1e400", "NaN", "Infinity", "-Infinity"]);
      default:
        return String(rnd());
    }
  };
  const CHARS = [
    "a",
    "Z",
    " ",
    "~",
    "\x7f",
    "é",
    "😀",
    "\u2028",
    "\uffff",
    "\ue000",
    '\\"',
    "\\\\",
    "\\/",
    "\\n",
    "\\b",
    "\\f",
    "\\r",
    "\\t",
  ];
  const ESCAPES = [
    "\\u00E9",
    "\\u00e9",
    "\\u0041",
    "\\u001F",
    "\\u0000",
    "\\u007f",
    "\\u000a",
    "\\ud83d\\ude00",
    "\\udc00",
    "\\ud800",
    "\\u0022",
  ];
  const string = (max: number) => {
    let s = '"';
    for (let i = int(max); i > 0; i--)
      s += rnd() < 0.6 ? String.fromCharCode(0x20 + int(95)).replace(/["\\]/, "x") : pick(rnd() < 0.6 ? CHARS : ESCAPES);
    return s + '"';
  };
  const KEYS = ['"a"', '"b"', '"ab"', '"a b"', '"A"', '"é"', '"\\u00e9"', '"😀"', '"\\ue000"', '"\\n"', '"z"', '""', '"a\\"b"'];
  const value = (depth: number): string => {
    const r = rnd();
    if (depth > 4 || r < 0.35) return r < 0.1 ? pick(["true", "false", "null"]) : r < 0.2 ? string(12) : number();
    const members = Array.from({ length: int(6) }, () =>
      r < 0.65 ? value(depth + 1) : `${rnd() < 0.5 ? pick(KEYS) : string(6)}${ws()}:${ws()}${value(depth + 1)}`,
    );
    const [open, close] = r < 0.65 ? ["[", "]"] : ["{", "}"];
    return `${open}${ws()}${members.join(`${ws()},${ws()}`)}${ws()}${close}`;
  };
  return () => ws() + value(0) + ws();
}

describe("canonical JSON fast path", () => {
  it("takes the canonical form of 2000 generated documents as it is, and agrees with the slow path on the documents", () => {
    const next = generator(20240601);
    let canonical = 0;
    for (let i = 0; i < 2000; i++) {
      const doc = next();
      for (const strict of [false, true]) {
        const slow = expectSameAsSlowPath(doc, strict);
        expectSameAsSlowPath(bytesOf(doc), strict);
        if (!("text" in slow)) continue;
        const c = slow.text;
        expect(fastPathTakes(c, { strict }), c).toBe(!hasNonFinite(c));
        expect(canonicalizeJsonBytes(c, { strict }).toString("latin1")).toBe(c);
        canonical++;
      }
    }
    expect(canonical).toBeGreaterThan(2000); // most documents are valid, in at least one mode
  });

  it("agrees with the slow path on every one-byte change of canonical text", () => {
    const next = generator(7);
    const bytes = [0x20, 0x22, 0x2c, 0x2d, 0x2e, 0x30, 0x31, 0x3a, 0x41, 0x45, 0x5c, 0x5d, 0x61, 0x65, 0x7d, 0x7f, 0xc3, 0x0a];
    const rnd = mulberry32(7);
    for (let i = 0; i < 200; i++) {
      const c = canonicalizeJson(next(), { fastPath: false });
      for (let k = 0; k < 10; k++) {
        const at = Math.floor(rnd() * (c.length + 1));
        const b = String.fromCharCode(bytes[Math.floor(rnd() * bytes.length)]!);
        const edits = [c.slice(0, at) + b + c.slice(at), c.slice(0, at) + b + c.slice(at + 1), c.slice(0, at) + c.slice(at + 1)];
        for (const edited of edits) for (const strict of [false, true]) expectSameAsSlowPath(Buffer.from(edited, "latin1"), strict);
      }
    }
  });

  it.each([
    ["unsorted keys", '{"b":1,"a":2}', '{"a":2,"b":1}'],
    ["unsorted nested keys", '[{"a":{"y":1,"x":2}}]', '[{"a":{"x":2,"y":1}}]'],
    ["a key before its prefix", '{"ab":1,"a":2}', '{"a":2,"ab":1}'],
    ["duplicate keys", '{"a":1,"a":2}', '{"a":2}'],
    ["duplicate keys spelt differently", '{"\\u00e9":1,"\\u00e9":2}', '{"\\u00e9":2}'],
    ["escaped keys out of code-point order", '{"\\ue000":1,"\\ud83d\\ude00":2,"\\n":3}', '{"\\n":3,"\\ue000":1,"\\ud83d\\ude00":2}'],
    ["a space after a colon", '{"a": 1}', '{"a":1}'],
    ["a space after a comma", "[1, 2]", "[1,2]"],
    ["leading whitespace", " []", "[]"],
    ["a trailing newline", "[]\n", "[]"],
    ["upper-case exponent", "1.0E5", "100000.0"],
    ["exponent without fraction", "1e5", "100000.0"],
    ["exponent without sign", "1e16", "1e+16"],
    ["a trailing zero", "1.50", "1.5"],
    ["negative zero integer", "-0", "0"],
    ["a float of 17 digits", "0.30000000000000005", "0.30000000000000004"],
    ["a float overflowing to inf", "[1e400]", "[Infinity]"],
    ["NaN, written back but not taken", "[NaN,Infinity,-Infinity]", "[NaN,Infinity,-Infinity]"],
    ["a literal non-ASCII character", '"é"', '"\\u00e9"'],
    ["upper-case hex", '"\\u00E9"', '"\\u00e9"'],
    ["an escaped printable character", '"\\u0041"', '"A"'],
    ["an escape with a short form", '"\\u000a"', '"\\n"'],
    ["an escaped quote in long form", '"\\u0022"', '"\\""'],
    ["an escaped slash", '"\\/"', '"/"'],
    ["a literal DEL", '"\x7f"', '"\\u007f"'],
  ])("%s is not taken, and the slow path writes it", (_name, input, expected) => {
    expect(fastPathTakes(input)).toBe(false);
    expect(canonicalizeJson(input)).toBe(expected);
    expect(canonicalizeJson(bytesOf(input))).toBe(expected);
    expect(fastPathTakes(expected)).toBe(!hasNonFinite(expected));
  });

  it.each([
    ["sorted keys, prefix first", '{"":0,"a":1,"a b":2,"ab":3,"b":{"a":[],"b":{}}}'],
    ["escaped keys in code-point order", '{"\\n":1,"\\"":2,"a":3,"\\u00e9":4,"\\ud800":5,"\\ue000":6,"\\ud83d\\ude00":7}'],
    ["every escape Python writes", '"\\"\\\\\\n\\r\\t\\b\\f\\u0000\\u001f\\u007f\\u00e9\\u2028\\ud83d\\ude00\\udc00"'],
    ["numbers", "[0,-1,12345678901234567890,1.0,-0.0,0.1,1e-05,1e+16,1000000000000000.0,5e-324,1.7976931348623157e+308]"],
    ["literals and empty containers", '[true,false,null,[],{},[[]],{"a":{}}]'],
    ["the widest integer Python converts", "-" + "9".repeat(MAX_INT_DIGITS)],
    ["the deepest nesting", "[".repeat(MAX_DEPTH) + "]".repeat(MAX_DEPTH)],
  ])("%s is taken as it is", (_name, input) => {
    expect(fastPathTakes(input)).toBe(true);
    expect(fastPathTakes(input, { strict: true })).toBe(true);
    expect(canonicalizeJson(input, { fastPath: false })).toBe(input);
    expect(canonicalizeJson(input)).toBe(input);
  });

  it.each([
    ["non-ASCII bytes", bytesOf('"é"')],
    ["a BOM before bytes", Uint8Array.from([0xef, 0xbb, 0xbf, 0x5b, 0x5d])],
    ["invalid UTF-8", Uint8Array.from([0x22, 0x61, 0xc3, 0x28, 0x22])],
    ["a BOM before a string", "\uFEFF[]"],
    ["a lone surrogate in a string", '["\uD83D"]'],
    ["a 4301-digit integer", "[1," + "1".repeat(MAX_INT_DIGITS + 1) + "]"],
    ["nesting deeper than MAX_DEPTH", "[".repeat(MAX_DEPTH + 1) + "]".repeat(MAX_DEPTH + 1)],
    ["NaN", '{"a":NaN}'],
    ["Infinity", "[Infinity]"],
    ["-Infinity", "[-Infinity]"],
    ["an overflowing float", "[1e400]"],
    ["a leading zero", "[01]"],
    ["a truncated document", '{"a":[1,2'],
    ["an empty input", ""],
    ["a control character in a string", '"a\nb"'],
    ["an incomplete \\u escape", '"\\u00e"'],
    ["trailing data", "[]]"],
  ])("%s: same outcome, same error, either way", (_name, input) => {
    for (const strict of [false, true]) {
      expectSameAsSlowPath(input, strict);
      if (typeof input === "string") expectSameAsSlowPath(bytesOf(input), strict);
    }
  });

  it("keeps the slow path's errors for a 4301-digit integer and for NaN in strict mode", () => {
    expect(outcome(() => canonicalizeJson("[1," + "1".repeat(MAX_INT_DIGITS + 1) + "]"))).toEqual({
      reason: `Integer has more than ${MAX_INT_DIGITS} digits (Python's limit)`,
      offset: 3,
    });
    expect(outcome(() => canonicalizeJson(bytesOf('{"a":NaN}'), { strict: true }))).toEqual({
      reason: "NaN is not JSON (RFC 8259)",
      offset: 5,
    });
  });

  it("returns canonical bytes input without copying, subarrays included", () => {
    const whole = bytesOf('xx{"a":[1,2.5,"\\u00e9"]}yy');
    const input = whole.subarray(2, whole.length - 2);
    const out = canonicalizeJsonBytes(input, { strict: true });
    expect(out.buffer).toBe(whole.buffer);
    expect(out.byteOffset).toBe(2);
    expect(out.length).toBe(input.length);
    input[6] = 0x33; // the same memory: "1" becomes "3"
    expect(out.toString("latin1")).toBe('{"a":[3,2.5,"\\u00e9"]}');
    // Without the fast path, the parser's own buffer.
    expect(canonicalizeJsonBytes(input, { fastPath: false }).buffer).not.toBe(whole.buffer);
  });

  it("returns a canonical string input itself", () => {
    const text = '{"a":[1,2.5,"\\u00e9"]}';
    expect(canonicalizeJson(text)).toBe(text);
    expect(canonicalizeJsonBytes(text).toString("latin1")).toBe(text);
  });
});
