import { describe, expect, it } from "vitest";
import { canonicalizeJson } from "../../src/delivery/canonical-json.js";
import { SidecarError } from "../../src/shared/errors.js";
import { JsonNumber, parseLossless, type LosslessValue } from "../../src/shared/lossless-json.js";

/** The parsed value with numbers as their text and objects as plain ones, for toEqual. */
function plain(value: LosslessValue): unknown {
  if (value instanceof JsonNumber) return { number: value.text };
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

function errorOf(text: string): SidecarError {
  try {
    parseLossless(text);
  } catch (e) {
    expect(e).toBeInstanceOf(SidecarError);
    expect((e as SidecarError).code).toBe("INVALID_JSON");
    return e as SidecarError;
  }
  throw new Error(`accepted ${text.slice(0, 80)}`);
}

describe("parseLossless", () => {
  it.each([
    "12345678901234567890",
    "-12345678901234567891",
    "0",
    "-0",
    "-0.0",
    "1e2",
    "1E+2",
    "2.5e-10",
    "100.000",
    "0.1000000000000000055511151231257827",
    "1e400",
  ])("keeps the number %s as written", (text) => {
    const value = parseLossless(` ${text} `);
    expect(value).toBeInstanceOf(JsonNumber);
    expect((value as JsonNumber).text).toBe(text);
  });

  it("reads nested structures, keeping the last of duplicate keys", () => {
    const value = parseLossless(' {"a" : [1, {"b": [true, false, null]}, []], "c": {}, "s": "x", "a2": {"k": 1, "k": 2}}\n');
    expect(plain(value)).toEqual({
      a: [{ number: "1" }, { b: [true, false, null] }, []],
      c: {},
      s: "x",
      a2: { k: { number: "2" } },
    });
  });

  it("reads back what canonicalizeJson writes, numbers included", () => {
    const canonical = canonicalizeJson('{"z":[1.50,-0,2.5e-10],"id":12345678901234567890,"t":"é😀\\n"}');
    expect(plain(parseLossless(canonical))).toEqual({
      id: { number: "12345678901234567890" },
      t: "é😀\n",
      z: [{ number: "1.5" }, { number: "0" }, { number: "2.5e-10" }],
    });
  });

  it("decodes escapes, surrogate pairs and lone escaped halves", () => {
    expect(parseLossless(String.raw`"a\"b\\c\/d\b\f\n\r\t\u00e9\u00C9"`)).toBe('a"b\\c/d\b\f\n\r\t\u00e9\u00c9');
    expect(parseLossless(String.raw`"\ud83d\ude00"`)).toBe("😀");
    expect(parseLossless(String.raw`"x\ud83dy"`)).toBe("x\ud83dy");
    expect(parseLossless('"plain é 😀"')).toBe("plain é 😀");
    expect(parseLossless('""')).toBe("");
  });

  it("keeps __proto__ and other prototype names as data in null-prototype objects", () => {
    const value = parseLossless('{"__proto__":{"polluted":true},"constructor":1}') as { [key: string]: LosslessValue };
    expect(Object.getPrototypeOf(value)).toBeNull();
    expect(Object.keys(value)).toEqual(["__proto__", "constructor"]);
    expect(plain(value["__proto__"]!)).toEqual({ polluted: true });
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it.each([
    ["[1,2,]", "offset 5"],
    ['{"a":1,}', "offset 7"],
    ["NaN", "offset 0"],
    ["[Infinity]", "offset 1"],
    ["-Infinity", "offset 1"],
    ["01", "Leading zeros are not allowed at offset 0"],
    ["[-012]", "Leading zeros are not allowed at offset 1"],
    ["1.", "Expecting a digit at offset 2"],
    [".5", "offset 0"],
    ["1e", "Expecting a digit at offset 2"],
    ["+1", "offset 0"],
    ['"abc', "Unterminated string at offset 0"],
    ['["ab\\', "Unterminated string at offset 4"],
    ['"a\nb"', "Invalid control character in string at offset 2"],
    ['"\\x"', "Invalid escape at offset 1"],
    ['"\\u12G4"', "Invalid \\uXXXX escape at offset 1"],
    ["1 2", "Unexpected data after the JSON value at offset 2"],
    ['{"a":1}x', "Unexpected data after the JSON value at offset 7"],
    ["{'a':1}", "Expecting a property name in double quotes at offset 1"],
    ['{"a" 1}', "Expecting ':' at offset 5"],
    ["[1 2]", "Expecting ',' or ']' at offset 3"],
    ["[tru]", "offset 1"],
    ["", "Unexpected end of input at offset 0"],
    ["[", "Unexpected end of input at offset 1"],
    ["\ufeff{}", "offset 0"],
  ])("rejects %j (%s)", (text, fragment) => {
    expect(errorOf(text).message).toContain(fragment);
  });

  it("accepts 512 levels of nesting and refuses 513", () => {
    expect(plain(parseLossless("[".repeat(512) + "]".repeat(512)))).toBeInstanceOf(Array);
    expect(errorOf("[".repeat(513) + "]".repeat(513)).message).toBe("JSON nested deeper than 512 levels at offset 512");
    expect(errorOf('{"a":'.repeat(513) + "1" + "}".repeat(513)).message).toContain("nested deeper than 512 levels");
  });
});
