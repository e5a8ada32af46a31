import { describe, expect, it } from "vitest";
import {
  CanonicalJsonError,
  MAX_DEPTH,
  MAX_INT_DIGITS,
  canonicalizeJson,
  canonicalizeJsonBytes,
  pythonFloatRepr,
} from "../../src/delivery/canonical-json.js";
import { compareCodePoints } from "../../src/shared/code-points.js";

// Expected values are what CPython 3.11 prints for json.dumps(json.loads(t), separators=(",", ":"), sort_keys=True).
const c = canonicalizeJson;

function errorOf(input: string | Uint8Array): CanonicalJsonError {
  try {
    c(input);
  } catch (e) {
    expect(e).toBeInstanceOf(CanonicalJsonError);
    return e as CanonicalJsonError;
  }
  throw new Error(`accepted ${String(input).slice(0, 80)}`);
}

describe("canonicalizeJson", () => {
  it("sorts keys, drops whitespace, keeps the last of duplicate keys", () => {
    expect(c(' {"b" : 1, "a":{"d":[ ], "c":{}}, "a" :{"z":null}}\n')).toBe('{"a":{"z":null},"b":1}');
    expect(c('{"k":1,"k":2,"k":3}')).toBe('{"k":3}');
    expect(c("[]")).toBe("[]");
    expect(c("{}")).toBe("{}");
    expect(c(" \t\r\n[true,false,null] \t\r\n")).toBe("[true,false,null]");
  });

  it("escapes like ensure_ascii: lower-case hex, astral as surrogate pairs, short escapes", () => {
    const input = '"é😀\\u2028\\ud83d\\u00E9\\/\\"\\\\\\b\\f\\n\\r\\t\x7f"';
    expect(c(input)).toBe(String.raw`"\u00e9\ud83d\ude00\u2028\ud83d\u00e9/\"\\\b\f\n\r\t\u007f"`);
    expect(c('"\\u0000\\u001F"')).toBe(String.raw`"\u0000\u001f"`);
    expect(c('"plain ascii ~"')).toBe('"plain ascii ~"');
  });

  it("echoes lone surrogate escapes and merges escaped pairs, as Python does", () => {
    expect(c('"\\udca9\\ud83d"')).toBe(String.raw`"\udca9\ud83d"`);
    expect(c('"\\uD83D\\uDE00"')).toBe(String.raw`"\ud83d\ude00"`);
    // The escaped pair and the literal character are the same key.
    expect(c('{"\\ud83d\\ude00":1,"😀":2}')).toBe(String.raw`{"\ud83d\ude00":2}`);
  });

  it("writes numbers as Python does", () => {
    const input =
      "[1.0,1e-05,1e16,1e+16,1e15,0.1,-0.0,5e-324,1.7976931348623157e308,1E5,1.0e2,10.50,-0,1e400,-1e400," +
      "123456789012345678901234567890,0.0001,1e-7,1e22,2.5e-3]";
    expect(c(input)).toBe(
      "[1.0,1e-05,1e+16,1e+16,1000000000000000.0,0.1,-0.0,5e-324,1.7976931348623157e+308,100000.0,100.0,10.5,0," +
        "Infinity,-Infinity,123456789012345678901234567890,0.0001,1e-07,1e+22,0.0025]",
    );
    expect(c("[0.30000000000000004, 0.1e1, 100e-2, 12345678901234567890.5]")).toBe("[0.30000000000000004,1.0,1.0,1.2345678901234567e+19]");
    expect(c("[NaN, Infinity, -Infinity]")).toBe("[NaN,Infinity,-Infinity]");
    expect(c("-" + "9".repeat(MAX_INT_DIGITS))).toBe("-" + "9".repeat(MAX_INT_DIGITS));
  });

  it("pythonFloatRepr switches to exponent form below 1e-4 and from 1e16", () => {
    expect([1e-4, 1e-5, 9999999999999998, 1e16, 123.456, -2.5e-310].map(pythonFloatRepr)).toEqual([
      "0.0001",
      "1e-05",
      "9999999999999998.0",
      "1e+16",
      "123.456",
      "-2.5e-310",
    ]);
  });

  it("sorts keys by code point, not UTF-16 unit", () => {
    const input = '{"\uE000":1,"😀":2,"\uFFFF":3,"\\ud800":4,"\\udc00":5,"z":6}';
    expect(c(input)).toBe(String.raw`{"z":6,"\ud800":4,"\udc00":5,"\ue000":1,"\uffff":3,"\ud83d\ude00":2}`);
    expect(compareCodePoints("\uFFFF", "😀")).toBeLessThan(0);
    expect(compareCodePoints("😀", "\uE000")).toBeGreaterThan(0);
    expect(compareCodePoints("\uDE00", "😀")).toBeLessThan(0); // lone low surrogate vs astral
    expect(compareCodePoints("\uD83D", "\uD83Dx")).toBeLessThan(0);
    expect(compareCodePoints("\uD83Dx", "😀")).toBeLessThan(0);
    expect(compareCodePoints("ab", "ab")).toBe(0);
  });

  it("reports where invalid JSON goes wrong", () => {
    const cases: [string, string, number][] = [
      ["", "Expecting value", 0],
      ["[1,]", "Expecting value", 3],
      ['{"a":1,}', "Expecting property name enclosed in double quotes", 7],
      ['{"a" 1}', "Expecting ':' delimiter", 5],
      ["[1 2]", "Expecting ',' delimiter", 3],
      ["01", "Extra data", 1],
      ["1.", "Extra data", 1],
      ["1e", "Extra data", 1],
      ["-NaN", "Expecting value", 0],
      ['"abc', "Unterminated string", 0],
      ['"a\nb"', "Invalid control character", 2],
      ['"\\x"', "Invalid \\escape", 1],
      ['"\\u12G4"', "Invalid \\uXXXX escape", 2],
      ["\uFEFF[]", "Unexpected UTF-8 BOM", 0],
      ["tru", "Expecting value", 0],
    ];
    for (const [input, reason, offset] of cases) {
      const e = errorOf(input);
      expect({ input, reason: e.reason, offset: e.offset }).toEqual({ input, reason, offset });
      expect(e.message).toBe(`${reason} at offset ${offset}`);
    }
  });

  it("rejects integers Python 3.11 refuses to convert", () => {
    expect(errorOf("[1, " + "1".repeat(MAX_INT_DIGITS + 1) + "]").offset).toBe(4);
    // A float has no such limit; this one overflows to inf.
    expect(c("1".repeat(MAX_INT_DIGITS + 1) + ".5")).toBe("Infinity");
  });

  it("limits nesting with an error instead of a stack overflow", () => {
    const ok = "[".repeat(MAX_DEPTH) + "]".repeat(MAX_DEPTH);
    expect(c(ok)).toBe(ok);
    const e = errorOf("[".repeat(MAX_DEPTH + 1) + "]".repeat(MAX_DEPTH + 1));
    expect(e.reason).toBe(`JSON nested deeper than ${MAX_DEPTH} levels`);
    expect(e.offset).toBe(MAX_DEPTH);
    expect(errorOf('{"a":'.repeat(100_000) + "1" + "}".repeat(100_000)).reason).toMatch(/nested deeper/);
    expect(errorOf("[".repeat(100_000)).reason).toMatch(/nested deeper/);
  });

  it("takes UTF-8 bytes strictly, dropping a BOM as json.loads(bytes) does", () => {
    expect(c(Buffer.from('{"é":"😀"}', "utf8"))).toBe(String.raw`{"\u00e9":"\ud83d\ude00"}`);
    expect(c(Buffer.from([0xef, 0xbb, 0xbf, 0x5b, 0x5d]))).toBe("[]");
    expect(c(new Uint8Array(Buffer.from(" [1] ")).subarray(1, 4))).toBe("[1]");
    expect(errorOf(Buffer.from([0x22, 0x61, 0xc3, 0x28, 0x22]))).toMatchObject({ reason: "Invalid UTF-8", offset: 2 });
    // UTF-8 encoded surrogate (CESU): Python's surrogatepass would take it, we don't.
    expect(errorOf(Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]))).toMatchObject({ reason: "Invalid UTF-8", offset: 1 });
    expect(errorOf(Buffer.from([0x5b, 0xf0, 0x9f, 0x98]))).toMatchObject({ reason: "Invalid UTF-8", offset: 1 });
  });

  it("rejects a string input with a literal lone surrogate", () => {
    expect(errorOf('["ok", "\uD83D"]')).toMatchObject({ reason: "Lone surrogate in input text", offset: 8 });
  });

  it("returns the same text as bytes, growing its buffer as escapes expand it", () => {
    const astral = '"' + "😀".repeat(20_000) + '"';
    const bytes = canonicalizeJsonBytes(astral);
    expect(bytes.length).toBe(2 + 20_000 * 12);
    expect(bytes.toString("latin1")).toBe('"' + String.raw`\ud83d\ude00`.repeat(20_000) + '"');
    expect(canonicalizeJsonBytes('{"b":"é","a":1}').toString("utf8")).toBe(String.raw`{"a":1,"b":"\u00e9"}`);
  });

  // How fast these go is the benchmark's business (`npm run bench -- --micro`), not a test's: no timing here.
  it("canonicalizes adversarial shapes (many keys, deep unsorted nesting)", () => {
    const keys = "{" + Array.from({ length: 100_000 }, (_, i) => `"k${100_000 - i}":${i}`).join(",") + "}";
    const inner = "[" + Array.from({ length: 10_000 }, (_, i) => `{"z":${i},"a":"${"x".repeat(40)}"}`).join(",") + "]";
    const deep = '{"b":'.repeat(MAX_DEPTH - 2) + inner + ',"a":1}'.repeat(MAX_DEPTH - 2);
    expect(canonicalizeJson(keys).startsWith('{"k1":99999,"k10":99990,')).toBe(true);
    expect(canonicalizeJson(deep).startsWith('{"a":1,"b":{"a":1,')).toBe(true);
  });

  it("canonicalizes a 1 MB document", () => {
    const item = (i: number) =>
      `{"id":${i},"name":"user ${i} Zoë 😀","tags":["a","b\\n","c"],"score":${i / 7},"big":${"9".repeat(30)},` +
      `"nested":{"z":true,"y":null,"x":[1.5e-7,${i}]},"text":"${"lorem ipsum ".repeat(8)}"}`;
    const parts: string[] = [];
    let size = 0;
    for (let i = 0; size < 1024 * 1024; i++) {
      parts.push(item(i));
      size += parts[parts.length - 1]!.length;
    }
    const doc = "[" + parts.join(",") + "]";
    const out = c(doc);
    expect(out.startsWith('[{"big":999')).toBe(true);
    // Canonical output is its own canonical form.
    expect(c(out)).toBe(out);
  });
});

describe("canonicalizeJson strict (RFC 8259), what the sidecar uses for events", () => {
  it.each([
    ['{"a": NaN}', "NaN is not JSON"],
    ['{"a": Infinity}', "Infinity is not JSON"],
    ['{"a": -Infinity}', "-Infinity is not JSON"],
    ['{"a": 1e400}', "1e400 overflows a double"],
    ["[-1e400]", "-1e400 overflows a double"],
  ])("refuses %s with a reason and an offset", (input, reason) => {
    let error: unknown;
    try {
      canonicalizeJson(input, { strict: true });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CanonicalJsonError);
    expect((error as CanonicalJsonError).code).toBe("INVALID_JSON");
    expect((error as CanonicalJsonError).reason).toContain(reason);
  });

  it("accepts every finite number, as the lenient mode writes it", () => {
    const input = '{"a": 1.5e308, "b": -0.0, "c": 1e-400, "d": 12345678901234567890}';
    expect(canonicalizeJson(input, { strict: true })).toBe(canonicalizeJson(input));
  });
});
