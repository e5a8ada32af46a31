import { describe, expect, it } from "vitest";
import { FilterError, compileFilter, type FilterInput } from "../../src/domain/payload-filter.js";
import { hasCode } from "../../src/shared/errors.js";
import { parseLossless } from "../../src/shared/lossless-json.js";

/** An event as the pipeline hands it over; counts how often the payload is asked for. */
function event(payload: string, headers: Record<string, string> = {}): FilterInput & { payloadReads: number } {
  const input = {
    payloadReads: 0,
    payload: () => {
      input.payloadReads += 1;
      return parseLossless(payload);
    },
    header: (name: string) => headers[name],
  };
  return input;
}

const ORDER = `{"id":12345678901234567890,"n":1e2,"price":100.0,"zero":-0,"status":"paid","amount":150,"ratio":0.00000015,
  "nothing":null,"tags":["red","blue"],"scores":[50,95],"items":[{"sku":"A-1","qty":2},{"sku":"B-2"}],
  "customer":{"tier":2.0,"name":"Ada"},"astral":"\\ud83d\\ude00","__proto__":1}`;

describe("compileFilter matches", () => {
  it.each<[string, unknown, boolean, Record<string, string>?]>([
    ["20-digit integer equal", { "payload.id": 12345678901234567890n }, true],
    ["20-digit integer off by one", { "payload.id": 12345678901234567891n }, false],
    ["20-digit integer $gt one less", { "payload.id": { $gt: 12345678901234567889n } }, true],
    ["20-digit integer $gt itself", { "payload.id": { $gt: 12345678901234567890n } }, false],
    ["20-digit integer $lte as a double would round", { "payload.id": { $lte: 12345678901234567889n } }, false],
    ["1e2 equals 100", { "payload.n": 100 }, true],
    ["100.0 within [100, 100]", { "payload.price": { $gte: 1e2, $lte: 100 } }, true],
    ["-0 equals 0", { "payload.zero": 0 }, true],
    ["a double operand keeps its decimal value", { "payload.ratio": 1.5e-7 }, true],
    ["a number does not equal its string", { "payload.n": "100" }, false],
    ["missing path $eq null", { "payload.missing": null }, true],
    ["missing path $eq 1", { "payload.missing": { $eq: 1 } }, false],
    ["missing path $ne 1", { "payload.missing": { $ne: 1 } }, true],
    ["missing path $ne null", { "payload.missing": { $ne: null } }, false],
    ["missing path $exists false", { "payload.missing": { $exists: false } }, true],
    ["missing path $not $eq", { "payload.missing": { $not: { $eq: 1 } } }, true],
    ["missing path $gt", { "payload.missing": { $gt: 0 } }, false],
    ["missing path $in with null", { "payload.missing": { $in: [1, null] } }, true],
    ["missing path $nin", { "payload.missing": { $nin: [1] } }, true],
    ["null present $exists true", { "payload.nothing": { $exists: true } }, true],
    ["null present $eq null", { "payload.nothing": null }, true],
    ["header $in", { "headers.x-region": { $in: ["eu", "uk"] } }, true, { "x-region": "eu" }],
    ["header $in, other value", { "headers.x-region": { $in: ["eu", "uk"] } }, false, { "x-region": "us" }],
    ["header name is lower-cased", { "headers.X-Region": "eu" }, true, { "x-region": "eu" }],
    ["header values are strings", { "headers.x-count": 5 }, false, { "x-count": "5" }],
    ["absent header $exists false", { "headers.x-region": { $exists: false } }, true],
    [
      "$or inside $and",
      { $and: [{ "payload.status": "paid" }, { $or: [{ "payload.amount": { $gte: 200 } }, { "headers.x-vip": "1" }] }] },
      true,
      { "x-vip": "1" },
    ],
    ["$or inside $and, no branch holds", { $and: [{ "payload.status": "paid" }, { $or: [{ "payload.amount": { $gte: 200 } }] }] }, false],
    ["top-level $not", { $not: { "payload.status": "paid" } }, false],
    ["top-level $not of a failing filter", { $not: { "payload.status": "refunded", "payload.amount": 150 } }, true],
    ["several keys are all required", { "payload.status": "paid", "payload.amount": 151 }, false],
    ["array element $eq", { "payload.tags": "red" }, true],
    ["array element $in", { "payload.tags": { $in: ["green", "blue"] } }, true],
    ["array $nin holds for no element", { "payload.tags": { $nin: ["green"] } }, true],
    ["array $nin fails when an element is in the list", { "payload.tags": { $nin: ["red"] } }, false],
    ["array $ne fails when an element equals", { "payload.tags": { $ne: "blue" } }, false],
    ["array equals the whole list in order", { "payload.tags": ["red", "blue"] }, true],
    ["array order matters", { "payload.tags": ["blue", "red"] }, false],
    ["array comparison by element", { "payload.scores": { $gt: 90 } }, true],
    ["array range: each bound may be met by a different element, as in MongoDB", { "payload.scores": { $gt: 60, $lt: 90 } }, true],
    ["array index path", { "payload.items.0.sku": "A-1" }, true],
    ["array index path, other item", { "payload.items.1.qty": { $exists: true } }, false],
    ["array index out of range", { "payload.items.2.sku": { $exists: false } }, true],
    ["object literal equality ignores key order and number spelling", { "payload.customer": { name: "Ada", tier: 2 } }, true],
    ["object literal needs the same keys", { "payload.customer": { name: "Ada" } }, false],
    ["string $lt", { "payload.status": { $lt: "q" } }, true],
    ["strings compare by code point", { "payload.astral": { $gt: "\uffff" } }, true],
    ["$gt string vs number does not match", { "payload.amount": { $gt: "5" } }, false],
    ["field $not of a range", { "payload.amount": { $not: { $gt: 100 } } }, false],
    ["whole payload", { payload: { $exists: true } }, true],
    ["__proto__ is a plain key", { "payload.__proto__": 1 }, true],
    ["constructor is not inherited", { "payload.constructor": { $exists: false } }, true],
    ["empty filter matches everything", {}, true],
  ])("%s", (_name, spec, expected, headers = {}) => {
    expect(compileFilter(spec).matches(event(ORDER, headers))).toBe(expected);
  });

  it("reads the payload only when a payload condition is evaluated, headers first", () => {
    const headersOnly = event(ORDER, { "x-region": "eu" });
    expect(compileFilter({ "headers.x-region": "eu" }).matches(headersOnly)).toBe(true);
    expect(headersOnly.payloadReads).toBe(0);

    const mixed = event(ORDER, { "x-region": "us" });
    expect(compileFilter({ "payload.status": "paid", "headers.x-region": "eu" }).matches(mixed)).toBe(false);
    expect(mixed.payloadReads).toBe(0);
  });

  it("is reusable across events", () => {
    const filter = compileFilter({ "payload.amount": { $gte: 100 } });
    expect(filter.matches(event('{"amount":99.999999999999999999}'))).toBe(false);
    expect(filter.matches(event('{"amount":1.00e2}'))).toBe(true);
    expect(filter.matches(event("[1]"))).toBe(false);
  });

  it("compares exponents of any length exactly", () => {
    expect(compileFilter({ payload: 100 }).matches(event("1e+0000000000000000002"))).toBe(true);
    expect(compileFilter({ payload: { $gt: 0 } }).matches(event("1e-99999999999999999999"))).toBe(true);
    const tiny = compileFilter({ "payload.0": { $lt: 1 } });
    expect(tiny.matches(event("[1e-99999999999999999998]"))).toBe(true);
    expect(compileFilter({ payload: { $gt: 10n ** 300n } }).matches(event("1e99999999999999999999"))).toBe(true);
    expect(compileFilter({ payload: { $lt: -(10n ** 300n) } }).matches(event("-1e99999999999999999999"))).toBe(true);
  });
});

describe("compileFilter rejects", () => {
  it.each<[string, unknown, string, string]>([
    [
      "an unknown field operator",
      { "payload.a": { $regex: "x" } },
      "payload.a.$regex",
      "unknown operator $regex (supported: $eq, $ne, $gt",
    ],
    ["an unknown logical operator", { $where: "1" }, "$where", "unknown operator $where (supported here: $and, $or, $not"],
    ["$in with a non-list", { "payload.a": { $in: "eu" } }, "payload.a.$in", "$in needs a list, not a string"],
    ["$nin with a non-list", { "payload.a": { $nin: { a: 1 } } }, "payload.a.$nin", "$nin needs a list"],
    ["$exists not boolean", { "payload.a": { $exists: "yes" } }, "payload.a.$exists", "$exists needs true or false"],
    ["mixed $ and plain keys", { "payload.a": { $gt: 1, b: 2 } }, "payload.a", "mixes operators ($gt) with plain keys (b)"],
    ["a bad first segment", { "body.a": 1 }, "body.a", "a path starts with payload. or headers."],
    ["$or not a list", { $or: { "payload.a": 1 } }, "$or", "$or needs a non-empty list of filters"],
    ["$or empty", { $or: [] }, "$or", "$or needs a non-empty list of filters"],
    ["$and with a non-filter", { $and: [{ "payload.a": 1 }, "x"] }, "$and.1", "a filter is an object, not a string"],
    ["$gt on a list", { "payload.a": { $gt: [1] } }, "payload.a.$gt", "$gt compares numbers or strings, not a list"],
    ["$lte on null", { "payload.a": { $lte: null } }, "payload.a.$lte", "$lte compares numbers or strings, not null"],
    ["headers alone", { headers: "x" }, "headers", "headers.<name>"],
    ["an empty header name", { "headers.": "x" }, "headers.", "headers.<name>"],
    ["an empty path segment", { "payload.a..b": 1 }, "payload.a..b", "no empty segments"],
    [
      "a nested error's full path",
      { $or: [{ "payload.a": 1 }, { "headers.x-region": { $in: 3 } }] },
      "$or.1.headers.x-region.$in",
      "$in needs a list",
    ],
    ["field $not without an operator object", { "payload.a": { $not: 5 } }, "payload.a.$not", "$not needs an operator object"],
    ["a non-finite number", { "payload.a": { $in: [1, Infinity] } }, "payload.a.$in.1", "Infinity is not a JSON number"],
    ["a rounded integer", { "payload.a": 2 ** 60 }, "payload.a", "past 2^53"],
    ["an unsupported type", { "payload.a": { b: new Date(0) } }, "payload.a.b", "not a Date"],
    ["a filter that is not an object", ["payload.a"], "", "a filter is an object, not a list"],
  ])("%s", (_name, spec, path, fragment) => {
    let error: unknown;
    try {
      compileFilter(spec);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FilterError);
    expect(hasCode(error, "CONFIG_INVALID")).toBe(true);
    expect((error as FilterError).path).toBe(path);
    expect((error as FilterError).message).toContain(fragment);
    if (path !== "") expect((error as FilterError).message).toContain(`"${path}"`);
  });
});
