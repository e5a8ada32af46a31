/**
 * Strict validation against a CustomResourceDefinition's openAPIV3Schema, for the CRDs no npm
 * package ships validators for: KEDA's (test/deploy/keda/, copied from kedacore/keda).
 *
 * No JSON-schema validator is a devDependency, and a CRD schema is a small structural subset of
 * OpenAPI v3, so this implements that subset: type (with nullable and x-kubernetes-int-or-string),
 * properties, required, additionalProperties, items, enum, anyOf, minimum/maximum, minLength/
 * maxLength, minItems/maxItems, pattern, the int32/int64/date-time formats, and the
 * x-kubernetes-validations rules listed in RULES below. Any other keyword, format or CEL rule
 * anywhere in a loaded CRD is refused when it loads: a CRD that needs more fails loudly instead of
 * passing unchecked.
 *
 * Like the API server's strict field validation, a field the schema does not declare is an error,
 * unless its object preserves unknown fields or maps them with additionalProperties. The root
 * metadata is checked as ObjectMeta (a name, string labels and annotations), which the CRD leaves
 * to the API server.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Schema = { [keyword: string]: unknown };

export const CRD_DIR = fileURLToPath(new URL("../keda", import.meta.url));

/** Keywords that document or default, and do not validate. */
const IGNORED = new Set(["description", "default", "example", "title"]);
const IMPLEMENTED = new Set([
  "type",
  "nullable",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "enum",
  "anyOf",
  "minimum",
  "maximum",
  "minLength",
  "maxLength",
  "minItems",
  "maxItems",
  "pattern",
  "format",
  "x-kubernetes-int-or-string",
  "x-kubernetes-preserve-unknown-fields",
  "x-kubernetes-list-type",
  "x-kubernetes-validations",
]);
const FORMATS = new Set(["int32", "int64", "date-time"]);
const INT32 = [-(2 ** 31), 2 ** 31 - 1] as const;

/**
 * The CEL rules of x-kubernetes-validations, by their text (whitespace collapsed), as functions of
 * `self`. A rule missing here is refused when its CRD loads.
 */
const RULES: Record<string, (self: Record<string, Json>) => boolean> = {
  "!has(self.minReplicaCount) || self.minReplicaCount <= (has(self.maxReplicaCount) ? self.maxReplicaCount : 100)": (self) =>
    self.minReplicaCount === undefined || (self.minReplicaCount as number) <= ((self.maxReplicaCount as number | undefined) ?? 100),
};
const ruleText = (rule: string) => rule.replace(/\s+/g, " ").trim();

export class UnsupportedSchema extends Error {}

/** Refuses a schema that uses anything this validator does not implement; walks all of it. */
export function checkSupported(schema: Schema, path = "#"): void {
  for (const [keyword, value] of Object.entries(schema)) {
    if (IGNORED.has(keyword)) continue;
    if (!IMPLEMENTED.has(keyword)) throw new UnsupportedSchema(`${path}: schema keyword ${keyword} is not implemented by crd-validate.ts`);
    if (keyword === "format" && !FORMATS.has(String(value))) throw new UnsupportedSchema(`${path}: format ${String(value)} is not implemented`);
    if (keyword === "x-kubernetes-list-type" && value !== "atomic") throw new UnsupportedSchema(`${path}: x-kubernetes-list-type ${String(value)} is not implemented`);
    if (keyword === "x-kubernetes-validations") {
      for (const { rule } of value as { rule: string }[]) {
        if (!RULES[ruleText(rule)]) throw new UnsupportedSchema(`${path}: CEL rule not implemented: ${ruleText(rule)}`);
      }
    }
  }
  for (const [name, child] of Object.entries((schema.properties ?? {}) as Record<string, Schema>)) checkSupported(child, `${path}/properties/${name}`);
  if (typeof schema.additionalProperties === "object") checkSupported(schema.additionalProperties as Schema, `${path}/additionalProperties`);
  if (schema.items) checkSupported(schema.items as Schema, `${path}/items`);
  ((schema.anyOf ?? []) as Schema[]).forEach((child, i) => checkSupported(child, `${path}/anyOf/${i}`));
}

const isObject = (value: unknown): value is Record<string, Json> => typeof value === "object" && value !== null && !Array.isArray(value);

function typeOf(value: Json): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function hasType(value: Json, type: string): boolean {
  const actual = typeOf(value);
  return actual === type || (type === "number" && actual === "integer");
}

const at = (path: string, key: string | number) => (typeof key === "number" ? `${path}[${key}]` : `${path}.${key}`);

/** Problems of `value` against `schema`, each "path: problem"; pushes onto `out`. */
export function validate(schema: Schema, value: Json, path: string, out: string[]): void {
  if (value === null) {
    if (schema.nullable !== true) out.push(`${path}: must not be null`);
    return;
  }
  if (schema["x-kubernetes-int-or-string"] === true) {
    if (!(typeof value === "string" || Number.isInteger(value))) {
      out.push(`${path}: must be an integer or a string, got ${typeOf(value)}`);
      return;
    }
  } else if (typeof schema.type === "string" && !hasType(value, schema.type)) {
    out.push(`${path}: must be ${schema.type}, got ${typeOf(value)}`);
    return;
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((allowed) => allowed === value)) {
    out.push(`${path}: must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(", ")}, got ${JSON.stringify(value)}`);
  }
  if (Array.isArray(schema.anyOf)) {
    const branches = (schema.anyOf as Schema[]).map((branch) => {
      const problems: string[] = [];
      validate(branch, value, path, problems);
      return problems;
    });
    if (!branches.some((problems) => problems.length === 0)) out.push(`${path}: matches none of anyOf (${branches.flat().join("; ")})`);
  }
  if (typeof value === "string") {
    if (typeof schema.minLength === "number" && [...value].length < schema.minLength) out.push(`${path}: shorter than ${schema.minLength}`);
    if (typeof schema.maxLength === "number" && [...value].length > schema.maxLength) out.push(`${path}: longer than ${schema.maxLength}`);
    if (typeof schema.pattern === "string" && !new RegExp(schema.pattern, "u").test(value)) out.push(`${path}: does not match ${schema.pattern}`);
    if (schema.format === "date-time" && Number.isNaN(Date.parse(value))) out.push(`${path}: not a date-time`);
  }
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) out.push(`${path}: must be >= ${schema.minimum}, got ${value}`);
    if (typeof schema.maximum === "number" && value > schema.maximum) out.push(`${path}: must be <= ${schema.maximum}, got ${value}`);
    if (schema.format === "int32" && (value < INT32[0] || value > INT32[1])) out.push(`${path}: out of the int32 range`);
    if (schema.format === "int64" && !Number.isSafeInteger(value)) out.push(`${path}: not an int64 JSON can carry exactly`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === "number" && value.length < schema.minItems) out.push(`${path}: fewer than ${schema.minItems} items`);
    if (typeof schema.maxItems === "number" && value.length > schema.maxItems) out.push(`${path}: more than ${schema.maxItems} items`);
    if (isObject(schema.items)) value.forEach((item, i) => validate(schema.items as Schema, item, at(path, i), out));
  }
  if (isObject(value)) {
    for (const name of (schema.required ?? []) as string[]) if (value[name] === undefined) out.push(`${at(path, name)}: required`);
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    for (const [key, child] of Object.entries(value)) {
      if (properties[key]) validate(properties[key], child, at(path, key), out);
      else if (isObject(schema.additionalProperties)) validate(schema.additionalProperties as Schema, child, at(path, key), out);
      else if (schema.additionalProperties !== true && schema["x-kubernetes-preserve-unknown-fields"] !== true) out.push(`${at(path, key)}: unknown field`);
    }
  }
  for (const { rule, message } of (schema["x-kubernetes-validations"] ?? []) as { rule: string; message?: string }[]) {
    if (isObject(value) && !RULES[ruleText(rule)]!(value)) out.push(`${path}: ${message ?? ruleText(rule)}`);
  }
}

interface Crd {
  group: string;
  kind: string;
  /** Served versions -> their openAPIV3Schema. */
  versions: Map<string, Schema>;
}

let loaded: Map<string, Crd> | undefined;

/** The CRDs of test/deploy/keda, by "group/Kind"; every schema checked for support when loaded. */
export function crds(): Map<string, Crd> {
  if (loaded) return loaded;
  loaded = new Map();
  for (const file of readdirSync(CRD_DIR).filter((f) => f.endsWith(".yaml"))) {
    const doc = parse(readFileSync(join(CRD_DIR, file), "utf8")) as {
      kind: string;
      spec: { group: string; names: { kind: string }; versions: { name: string; served: boolean; schema: { openAPIV3Schema: Schema } }[] };
    };
    if (doc.kind !== "CustomResourceDefinition") continue;
    const versions = new Map<string, Schema>();
    for (const v of doc.spec.versions.filter((version) => version.served)) {
      checkSupported(v.schema.openAPIV3Schema, `${file}#${v.name}`);
      versions.set(v.name, v.schema.openAPIV3Schema);
    }
    loaded.set(`${doc.spec.group}/${doc.spec.names.kind}`, { group: doc.spec.group, kind: doc.spec.names.kind, versions });
  }
  return loaded;
}

/** Groups this validator has CRDs for. */
export const crdGroups = () => new Set([...crds().values()].map((crd) => crd.group));

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function metadataProblems(metadata: Json | undefined, path: string): string[] {
  if (!isObject(metadata)) return [`${path}: required, an object`];
  const out: string[] = [];
  const name = metadata.name;
  if (typeof name !== "string" || name.length > 253 || !DNS_SUBDOMAIN.test(name)) out.push(`${path}.name: not a DNS subdomain: ${JSON.stringify(name)}`);
  for (const map of ["labels", "annotations"]) {
    const entries = metadata[map];
    if (entries === undefined) continue;
    if (!isObject(entries)) out.push(`${path}.${map}: must be a map of strings`);
    else for (const [key, value] of Object.entries(entries)) if (typeof value !== "string") out.push(`${path}.${map}.${key}: must be a string`);
  }
  return out;
}

/**
 * Problems of one object of a CRD in test/deploy/keda: empty when valid, with no unknown field.
 * Throws for an apiVersion/kind it has no CRD for (strict-validate.ts only hands it those).
 */
export function crdProblems(object: Record<string, Json>): string[] {
  const apiVersion = String(object.apiVersion);
  const kind = String(object.kind);
  const [group, version] = apiVersion.split("/", 2) as [string, string | undefined];
  const crd = crds().get(`${group}/${kind}`);
  if (!crd) throw new Error(`no CRD for ${kind} in ${group} under ${CRD_DIR}`);
  const schema = version === undefined ? undefined : crd.versions.get(version);
  if (!schema) return [`${kind}: ${apiVersion} is not a served version of ${group}/${kind} (${[...crd.versions.keys()].join(", ")})`];
  // The root metadata is ObjectMeta, which the API server checks, not the CRD's schema.
  const { metadata, ...rest } = object;
  const properties = { ...(schema.properties as Record<string, Schema>) };
  delete properties.metadata;
  const out = metadataProblems(metadata, `${kind}.metadata`);
  validate({ ...schema, properties }, rest, kind, out);
  return out;
}
