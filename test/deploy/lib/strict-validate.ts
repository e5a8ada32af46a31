/**
 * Strict validation against the Kubernetes (kubernetes-models) and Prometheus Operator
 * (@kubernetes-models/prometheus-operator) schemas those packages ship, offline.
 *
 * Their compiled ajv validators ignore unknown fields (the OpenAPI schemas carry no
 * additionalProperties: false), while the API server drops or rejects them: a misspelt
 * `readOnlyRootFileSystem` would pass and silently do nothing. So the object is handed to the
 * validator through a Proxy that records every property the validator reads. In an object whose
 * schema has properties, the validator reads each of them (present or not); a key it never read is
 * one the schema does not know. Objects it reads nothing of are free-form (e.g. preserve-unknown-fields)
 * and stay unchecked; map-like objects (labels, ConfigMap data) are iterated, so all their keys count.
 *
 * Objects of the CRDs in test/deploy/keda (KEDA's ScaledObject, TriggerAuthentication), which no
 * package ships validators for, go to crd-validate.ts instead: their CRDs' own openAPIV3Schema,
 * just as strictly.
 */
import { crdGroups, crdProblems } from "./crd-validate.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type ValidateThis = (this: unknown) => void;

const CORE_PACKAGE = "kubernetes-models";
const CRD_PACKAGES: Record<string, string> = {
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

async function validatorFor(apiVersion: string, kind: string): Promise<ValidateThis> {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/", 2) : ["", apiVersion];
  const pkg = (group && CRD_PACKAGES[group]) || CORE_PACKAGE;
  const modulePath = group ? `${pkg}/${group}/${version}` : `${pkg}/${version}`;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(modulePath)) as Record<string, unknown>;
  } catch {
    throw new Error(`no schema for apiVersion ${apiVersion} (module ${modulePath}); unknown kinds are errors, not skipped`);
  }
  const model = mod[kind] as { prototype?: { validate?: ValidateThis } } | undefined;
  const validate = model?.prototype?.validate;
  if (typeof validate !== "function") throw new Error(`no schema for ${kind} in ${apiVersion}`);
  return validate;
}

interface Reads {
  path: string;
  keys: Set<PropertyKey>;
}

function watch(value: Json, path: string, reads: Map<object, Reads>): Json {
  if (value === null || typeof value !== "object") return value;
  const record: Reads = { path, keys: new Set() };
  reads.set(value, record);
  const children = new Map<PropertyKey, Json>();
  return new Proxy(value, {
    get(target, key, receiver) {
      record.keys.add(key);
      const child = Reflect.get(target, key, receiver) as Json | undefined;
      if (child === null || typeof child !== "object") return child;
      if (!children.has(key)) {
        const childPath = Array.isArray(target) ? `${path}[${String(key)}]` : `${path}.${String(key)}`;
        children.set(key, watch(child, childPath, reads));
      }
      return children.get(key);
    },
    has(target, key) {
      record.keys.add(key);
      return Reflect.has(target, key);
    },
  }) as Json;
}

function unknownFields(value: Json, reads: Map<object, Reads>, out: string[]): void {
  if (value === null || typeof value !== "object") return;
  const record = reads.get(value);
  if (Array.isArray(value)) {
    value.forEach((item) => unknownFields(item, reads, out));
    return;
  }
  // Never reached by the validator (an earlier error, or inside a free-form object): nothing to say.
  if (!record) return;
  if (record.keys.size > 0) {
    for (const key of Object.keys(value)) if (!record.keys.has(key)) out.push(`${record.path}.${key}: unknown field`);
  }
  for (const child of Object.values(value)) unknownFields(child, reads, out);
}

/** Returns the problems of one object; empty when it is valid and has no unknown field. */
export async function strictProblems(object: unknown): Promise<string[]> {
  if (object === null || typeof object !== "object" || Array.isArray(object)) return ["not an object"];
  const { apiVersion, kind } = object as { apiVersion?: unknown; kind?: unknown };
  if (typeof apiVersion !== "string" || typeof kind !== "string") return ["apiVersion and kind are required"];
  if (apiVersion.includes("/") && crdGroups().has(apiVersion.split("/", 1)[0]!)) {
    return crdProblems(object as Parameters<typeof crdProblems>[0]);
  }
  let validate: ValidateThis;
  try {
    validate = await validatorFor(apiVersion, kind);
  } catch (error) {
    return [(error as Error).message];
  }
  const reads = new Map<object, Reads>();
  const problems: string[] = [];
  const watched = watch(object as Json, kind, reads);
  try {
    validate.call(watched);
  } catch (error) {
    problems.push(`${kind}: ${(error as Error).message}`);
  }
  unknownFields(object as Json, reads, problems);
  return problems;
}

/** A name for messages: Kind/name. */
export function describe(object: unknown): string {
  const o = object as { kind?: string; metadata?: { name?: string } };
  return `${o.kind ?? "?"}/${o.metadata?.name ?? "?"}`;
}
