// Types for scripts/config-reference.mjs (kept as plain JS so it runs with bare `node` on the build).
import type { z } from "zod";
import type { ReferenceEntry, ValueType } from "../src/config/schema.js";

export declare const MARKDOWN_FILE: string;
export declare const JSON_SCHEMA_FILE: string;
export declare const PLACEHOLDER_PATTERN: string;
export declare const DURATION_PATTERN: string;
export declare const HEADER_NAME_PATTERN: string;
export declare const HEADER_VALUE_PATTERN: string;

/** What reads a key's reference entry: the `reference` registry of src/config/schema.ts. */
export interface ReferenceRegistry {
  get(schema: never): ReferenceEntry | undefined;
}

export interface ReferenceKey {
  /** The key's own name. */
  name: string;
  /** Relative to pyfly.callbacks, list items as `[]`: `configs[].subscriptions[].target-url`. */
  path: string;
  segments: { name: string; list: boolean }[];
  required: boolean;
  meta: ReferenceEntry & { type: ValueType; description: string };
  /** PYFLY_CALLBACKS_... with `<i>`, `<j>` for list indexes; undefined for maps, which the environment cannot set. */
  env: string | undefined;
  /** The key's schema as it appears in its object. */
  schema: z.ZodType;
}

export interface ReferenceSection {
  /** Relative to pyfly.callbacks ("" for pyfly.callbacks itself), list items as `[]`. */
  path: string;
  segments: { name: string; list: boolean }[];
  description: string | undefined;
  /** An item of a list of objects (configs[], subscriptions[], authorized-domains[]). */
  list: boolean;
  required: boolean;
  /** An unknown key is an error. */
  strict: boolean;
  keys: ReferenceKey[];
  entries: ({ key: ReferenceKey; section?: undefined } | { section: ReferenceSection; key?: undefined })[];
}

export declare function collectReference(
  callbacksSchema: z.ZodType,
  registry: ReferenceRegistry,
): { sections: ReferenceSection[]; keys: ReferenceKey[] };

/** The JSON Schema (draft-07) of what the loader accepts for one value of this type. */
export declare function valueJsonSchema(type: ValueType): Record<string, unknown>;
export declare function buildJsonSchema(callbacksSchema: z.ZodType, registry: ReferenceRegistry): Record<string, unknown>;
export declare function typeText(type: ValueType): string;
export declare function renderMarkdownSource(callbacksSchema: z.ZodType, registry: ReferenceRegistry): string;

/** Both files, formatted as committed. */
export declare function renderReference(schema: {
  callbacksSchema: z.ZodType;
  reference: ReferenceRegistry;
}): Promise<{ markdown: string; jsonSchema: string }>;
