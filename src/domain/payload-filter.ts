/**
 * Subscription filters in the MongoDB query language, as Convoy and Hookdeck Outpost offer them:
 *
 *   { "payload.amount": { "$gte": 100 }, "headers.x-region": { "$in": ["eu", "uk"] },
 *     "$or": [{ "payload.status": "paid" }, { "payload.retry": { "$exists": false } }] }
 *
 * A filter is compiled once, when the configuration loads, into closures; matching an event then
 * only walks paths and compares. The semantics are MongoDB's, including its choices around missing
 * fields ({$eq: null} matches them) and arrays (a condition on an array field holds when it holds
 * for the array or for any element; $ne and $nin hold only when it holds for none).
 *
 * Numbers compare by exact decimal value whatever their spelling (100 = 1e2 = 100.0, -0 = 0) and
 * at any precision, because payload numbers are the lossless parser's text, never doubles.
 */
import { compareCodePoints } from "../shared/code-points.js";
import { SidecarError } from "../shared/errors.js";
import { JsonNumber, type LosslessValue } from "../shared/lossless-json.js";

export class FilterError extends SidecarError {
  /** Where in the filter the problem is: its keys joined by ".", e.g. "$or.1.headers.x-region.$in". */
  readonly path: string;

  constructor(path: string, problem: string) {
    super("CONFIG_INVALID", `${path === "" ? "Invalid filter" : `Invalid filter at "${path}"`}: ${problem}`);
    this.path = path;
  }
}

export interface FilterInput {
  /** The event payload, parsed losslessly; called at most once per event by the caller's caching, may be called several times, must be cheap after first. */
  payload(): LosslessValue;
  /** A record header's value by lower-case name, undefined when absent. */
  header(name: string): string | undefined;
}

export interface PayloadFilter {
  matches(input: FilterInput): boolean;
}

export function compileFilter(spec: unknown): PayloadFilter {
  const { test } = compileObject(spec, "");
  return { matches: test };
}

type Test = (input: FilterInput) => boolean;
/** A field's value; undefined when the path leads nowhere. */
type Field = LosslessValue | undefined;
type Condition = (value: Field) => boolean;

interface Clause {
  test: Test;
  /** Whether evaluating it may parse the payload; clauses that do not are tried first. */
  readsPayload: boolean;
}

const LOGICAL = ["$and", "$or", "$not"];
const FIELD_OPERATORS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$not"];

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

function compileObject(spec: unknown, path: string): Clause {
  if (!isPlainObject(spec)) throw new FilterError(path, `a filter is an object, not ${describe(spec)}`);
  const clauses: Clause[] = [];
  for (const [key, value] of Object.entries(spec)) {
    const at = join(path, key);
    if (!key.startsWith("$")) clauses.push(compileField(key, value, at));
    else if (key === "$and") clauses.push(allOf(compileList(value, at)));
    else if (key === "$or") clauses.push(anyOf(compileList(value, at)));
    else if (key === "$not") clauses.push(negate(compileObject(value, at)));
    else throw new FilterError(at, `unknown operator ${key} (supported here: ${LOGICAL.join(", ")}; field operators go under a path)`);
  }
  return allOf(clauses);
}

function compileList(spec: unknown, path: string): Clause[] {
  if (!Array.isArray(spec) || spec.length === 0) throw new FilterError(path, `${lastKey(path)} needs a non-empty list of filters`);
  return spec.map((item, i) => compileObject(item, join(path, String(i))));
}

/** Cheapest first; an empty list is MongoDB's empty filter, which matches everything. */
function allOf(clauses: Clause[]): Clause {
  if (clauses.length === 1) return clauses[0]!;
  const tests = clauses.sort((a, b) => Number(a.readsPayload) - Number(b.readsPayload)).map((c) => c.test);
  return {
    test: (input) => {
      for (const test of tests) if (!test(input)) return false;
      return true;
    },
    readsPayload: clauses.some((c) => c.readsPayload),
  };
}

function anyOf(clauses: Clause[]): Clause {
  const tests = clauses.sort((a, b) => Number(a.readsPayload) - Number(b.readsPayload)).map((c) => c.test);
  return {
    test: (input) => {
      for (const test of tests) if (test(input)) return true;
      return false;
    },
    readsPayload: clauses.some((c) => c.readsPayload),
  };
}

function negate({ test, readsPayload }: Clause): Clause {
  return { test: (input) => !test(input), readsPayload };
}

function compileField(key: string, spec: unknown, path: string): Clause {
  const dot = key.indexOf(".");
  const head = dot < 0 ? key : key.slice(0, dot);
  if (head === "headers") {
    const name = dot < 0 ? "" : key.slice(dot + 1).toLowerCase();
    if (name === "") throw new FilterError(path, "a header path names the header: headers.<name>");
    const condition = compileCondition(spec, path);
    return { test: (input) => condition(input.header(name)), readsPayload: false };
  }
  if (head !== "payload") throw new FilterError(path, `a path starts with payload. or headers. (or is payload), not ${head}`);
  const segments = (dot < 0 ? [] : key.slice(dot + 1).split(".")).map((name) => {
    if (name === "") throw new FilterError(path, "a path has no empty segments");
    return { name, index: /^(?:0|[1-9][0-9]*)$/.test(name) ? Number(name) : -1 };
  });
  const condition = compileCondition(spec, path);
  return { test: (input) => condition(walk(input.payload(), segments)), readsPayload: true };
}

/** Objects by key, arrays by index; anything else, or a key or index that is not there, is missing. */
function walk(root: LosslessValue, segments: readonly { name: string; index: number }[]): Field {
  let value: Field = root;
  for (const { name, index } of segments) {
    if (value === null || typeof value !== "object" || value instanceof JsonNumber) return undefined;
    if (Array.isArray(value)) {
      if (index < 0 || index >= value.length) return undefined;
      value = value[index];
    } else {
      // hasOwn also keeps a payload built with an ordinary prototype from reaching Object.prototype.
      if (!Object.hasOwn(value, name)) return undefined;
      value = value[name];
    }
  }
  return value;
}

/** An operator object (every key starts with "$"), or a literal meaning $eq. */
function compileCondition(spec: unknown, path: string): Condition {
  if (!isPlainObject(spec)) return equals(toLossless(spec, path));
  const keys = Object.keys(spec);
  const operators = keys.filter((k) => k.startsWith("$"));
  if (operators.length === 0) return equals(toLossless(spec, path));
  if (operators.length !== keys.length) {
    const plain = keys.find((k) => !k.startsWith("$"))!;
    throw new FilterError(path, `mixes operators (${operators[0]}) with plain keys (${plain}); quote an object with $ keys as {$eq: ...}`);
  }
  const conditions = operators.map((op) => compileOperator(op, spec[op], join(path, op)));
  if (conditions.length === 1) return conditions[0]!;
  return (value) => {
    for (const condition of conditions) if (!condition(value)) return false;
    return true;
  };
}

function compileOperator(op: string, operand: unknown, path: string): Condition {
  switch (op) {
    case "$eq":
      return equals(toLossless(operand, path));
    case "$ne": {
      const eq = equals(toLossless(operand, path));
      return (value) => !eq(value);
    }
    case "$in":
      return within(operand, path);
    case "$nin": {
      const isIn = within(operand, path);
      return (value) => !isIn(value);
    }
    case "$gt":
      return compares(operand, path, (order) => order > 0);
    case "$gte":
      return compares(operand, path, (order) => order >= 0);
    case "$lt":
      return compares(operand, path, (order) => order < 0);
    case "$lte":
      return compares(operand, path, (order) => order <= 0);
    case "$exists": {
      if (typeof operand !== "boolean") throw new FilterError(path, `$exists needs true or false, not ${describe(operand)}`);
      return (value) => (value !== undefined) === operand;
    }
    case "$not": {
      if (!isPlainObject(operand) || !Object.keys(operand).some((k) => k.startsWith("$"))) {
        throw new FilterError(path, "$not needs an operator object such as {$in: [...]}");
      }
      const inner = compileCondition(operand, path);
      return (value) => !inner(value);
    }
    default:
      throw new FilterError(path, `unknown operator ${op} (supported: ${FIELD_OPERATORS.join(", ")})`);
  }
}

/** MongoDB's equality: a missing field equals only null; an array field also matches by element. */
function equals(operand: LosslessValue): Condition {
  const is = sameAs(operand);
  const missing = operand === null;
  return (value) => (value === undefined ? missing : is(value) || (Array.isArray(value) && value.some(is)));
}

function within(operand: unknown, path: string): Condition {
  if (!Array.isArray(operand)) throw new FilterError(path, `${lastKey(path)} needs a list, not ${describe(operand)}`);
  const list = operand.map((item, i) => toLossless(item, join(path, String(i))));
  const matchers = list.map(sameAs);
  const missing = list.includes(null);
  const isIn = (value: LosslessValue): boolean => {
    for (const is of matchers) if (is(value)) return true;
    return false;
  };
  return (value) => (value === undefined ? missing : isIn(value) || (Array.isArray(value) && value.some(isIn)));
}

/** Only number with number and string with string (by code point); any other pair does not match. */
function compares(operand: unknown, path: string, accept: (order: number) => boolean): Condition {
  const literal = toLossless(operand, path);
  let holds: (value: LosslessValue) => boolean;
  if (literal instanceof JsonNumber) {
    const bound = decimalOf(literal.text);
    holds = (value) => value instanceof JsonNumber && accept(compareDecimals(decimalOf(value.text), bound));
  } else if (typeof literal === "string") {
    holds = (value) => typeof value === "string" && accept(compareCodePoints(value, literal));
  } else {
    throw new FilterError(path, `${lastKey(path)} compares numbers or strings, not ${describe(operand)}`);
  }
  return (value) => value !== undefined && (Array.isArray(value) ? value.some(holds) : holds(value));
}

function sameAs(operand: LosslessValue): (value: LosslessValue) => boolean {
  if (operand instanceof JsonNumber) {
    const { text } = operand;
    const decimal = decimalOf(text);
    return (value) => value instanceof JsonNumber && (value.text === text || compareDecimals(decimalOf(value.text), decimal) === 0);
  }
  if (operand === null || typeof operand !== "object") return (value) => value === operand;
  return (value) => deepEqual(value, operand);
}

function deepEqual(a: LosslessValue, b: LosslessValue): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (a instanceof JsonNumber || b instanceof JsonNumber) {
    return a instanceof JsonNumber && b instanceof JsonNumber && compareDecimals(decimalOf(a.text), decimalOf(b.text)) === 0;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i]!, b[i]!)) return false;
    return true;
  }
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) if (!Object.hasOwn(b, key) || !deepEqual(a[key]!, b[key]!)) return false;
  return true;
}

/**
 * A number as 0.digits x 10^exponent with digits free of leading and trailing zeros, so equal
 * values have equal forms; zero has no digits. The exponent stays a double while that is exact and
 * becomes a bigint only for exponents written with more than 15 characters.
 */
interface Decimal {
  negative: boolean;
  digits: string;
  exponent: number | bigint;
}

/** For the text of a valid JSON number (the parser's, or String() of a double, or a bigint's). */
function decimalOf(text: string): Decimal {
  const negative = text.charCodeAt(0) === 0x2d;
  const from = negative ? 1 : 0;
  let end = text.indexOf("e");
  if (end < 0) end = text.indexOf("E");
  if (end < 0) end = text.length;
  const dot = text.indexOf(".");
  const mantissa = dot < 0 ? text.slice(from, end) : text.slice(from, dot) + text.slice(dot + 1, end);
  const pointAt = (dot < 0 ? end : dot) - from;
  let first = 0;
  while (mantissa.charCodeAt(first) === 0x30) first++;
  if (first === mantissa.length) return { negative: false, digits: "", exponent: 0 };
  let last = mantissa.length;
  while (mantissa.charCodeAt(last - 1) === 0x30) last--;
  const shift = pointAt - first;
  let exponent: number | bigint = shift;
  if (end < text.length) {
    const written = text.slice(end + 1);
    exponent = written.length > 15 ? BigInt(written) + BigInt(shift) : Number(written) + shift;
  }
  return { negative, digits: mantissa.slice(first, last), exponent };
}

function compareDecimals(a: Decimal, b: Decimal): number {
  const signA = a.digits === "" ? 0 : a.negative ? -1 : 1;
  const signB = b.digits === "" ? 0 : b.negative ? -1 : 1;
  if (signA !== signB || signA === 0) return signA - signB;
  // Same sign: order the magnitudes (first by exponent, then digit by digit), then apply the sign.
  let magnitude = a.exponent < b.exponent ? -1 : a.exponent > b.exponent ? 1 : 0;
  if (magnitude === 0) magnitude = a.digits < b.digits ? -1 : a.digits > b.digits ? 1 : 0;
  return signA * magnitude;
}

/**
 * A config literal in the payload's representation. YAML integers arrive as bigints when they need
 * to; a double that is an integer past 2^53 has probably been rounded already, so it is refused
 * rather than compared as if exact.
 */
function toLossless(spec: unknown, path: string): LosslessValue {
  if (spec === null || typeof spec === "boolean" || typeof spec === "string") return spec;
  if (typeof spec === "bigint") return new JsonNumber(spec.toString());
  if (typeof spec === "number") {
    if (!Number.isFinite(spec)) throw new FilterError(path, `${spec} is not a JSON number`);
    if (Number.isInteger(spec) && !Number.isSafeInteger(spec)) {
      throw new FilterError(path, `${spec} is an integer past 2^53 that may have been rounded; write it as an exact YAML integer`);
    }
    return new JsonNumber(String(spec));
  }
  if (Array.isArray(spec)) return Array.from(spec, (item: unknown, i) => toLossless(item, join(path, String(i))));
  if (isPlainObject(spec)) {
    const members = Object.create(null) as { [key: string]: LosslessValue };
    for (const [key, value] of Object.entries(spec)) members[key] = toLossless(value, join(path, key));
    return members;
  }
  throw new FilterError(path, `a value is null, a boolean, a string, a number, a list or a mapping, not ${describe(spec)}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (isPlainObject(value)) return "a mapping";
  if (typeof value === "object") return `a ${Object.prototype.toString.call(value).slice(8, -1)}`;
  if (value === undefined) return "undefined";
  return `a ${typeof value}`;
}

function lastKey(path: string): string {
  return path.slice(path.lastIndexOf(".") + 1);
}
