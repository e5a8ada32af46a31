// Writes docs/configuration.md (the configuration reference) and docs/application.schema.json (a
// JSON Schema of application.yml for editors) from the zod schema in src/config/schema.ts, so
// neither can drift from what the loader accepts. `npm run config-reference` builds and runs it;
// test/unit/config-reference.test.ts renders both in memory and compares them with the committed
// files. Plain JS (types in config-reference.d.mts) so it runs with bare `node` on the build.
//
// The schema gives the structure (sections, lists of objects, which keys are required, strict or
// loose objects); the `reference` registry gives each key's description, how its value is written
// (type and limits) and its default, which the schema's helpers record from their own arguments.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as prettier from "prettier";
import YAML from "yaml";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const MARKDOWN_FILE = "docs/configuration.md";
export const JSON_SCHEMA_FILE = "docs/application.schema.json";

/** `${VAR}` or `${VAR:default}` anywhere in a string (src/config/placeholders.ts). */
export const PLACEHOLDER_PATTERN = "\\$\\{[A-Za-z_][A-Za-z0-9_]*(:[^}]*)?\\}";
/** A duration string (src/config/durations.ts, whose pattern is case-insensitive). */
export const DURATION_PATTERN = "^\\s*\\d+(\\.\\d+)?\\s*([mM][sS]|[sS]|[mM]|[hH])?\\s*$";
const INTEGER_STRING = "^\\s*-?\\d+\\s*$";
const DECIMAL_STRING = "^\\s*\\d+(\\.\\d+)?\\s*$";
/** RFC 9110 token, and a value of printable ASCII without a space at either end (src/delivery/http-header-check.ts). */
export const HEADER_NAME_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
export const HEADER_VALUE_PATTERN = "^([\\x21-\\x7E]([\\x20-\\x7E]*[\\x21-\\x7E])?)?$";
const INDEXES = ["i", "j", "k", "l"];

const defOf = (schema) => schema._zod.def;

/** Follows optional/prefault/default/pipe/transform wrappers to the object, array or value inside; outer metadata wins. */
function unwrap(schema, registry) {
  let meta = {};
  let current = schema;
  for (;;) {
    meta = { ...(registry.get(current) ?? {}), ...meta };
    const def = defOf(current);
    if (def.type === "object" || def.type === "array" || def.type === "record") return { def, meta };
    const next = def.innerType ?? def.in;
    if (next === undefined) return { def, meta };
    current = next;
  }
}

const isRequired = (schema) => schema._zod.optin === undefined;
const envTokens = (key) => key.toUpperCase().replace(/[-.]/g, "_");

/**
 * The schema as a tree: sections (objects, possibly list items) holding keys and sections in the
 * schema's order. Paths are relative to pyfly.callbacks; `segments` say which steps are list items.
 * Throws when a key has no description or type: every key is documented.
 */
export function collectReference(callbacksSchema, registry) {
  const sections = [];
  const keys = [];
  const visit = (schema, segments, meta, required) => {
    const { def } = unwrap(schema, registry);
    const depth = segments.filter((s) => s.list).length;
    const section = {
      path: displayPath(segments),
      segments,
      description: meta.description,
      list: segments.at(-1)?.list ?? false,
      required,
      strict: def.catchall !== undefined && defOf(def.catchall).type === "never",
      keys: [],
      entries: [],
    };
    sections.push(section);
    for (const [name, child] of Object.entries(def.shape)) {
      const inner = unwrap(child, registry);
      const childRequired = isRequired(child);
      if (inner.def.type === "object") {
        section.entries.push({ section: visit(child, [...segments, { name, list: false }], inner.meta, childRequired) });
        continue;
      }
      if (inner.def.type === "array" && unwrap(inner.def.element, registry).def.type === "object") {
        section.entries.push({ section: visit(inner.def.element, [...segments, { name, list: true }], inner.meta, childRequired) });
        continue;
      }
      const childSegments = [...segments, { name, list: false }];
      if (inner.meta.description === undefined || inner.meta.type === undefined) {
        throw new Error(`pyfly.callbacks.${displayPath(childSegments)}: no reference description or type in src/config/schema.ts`);
      }
      const key = {
        name,
        path: displayPath(childSegments),
        segments: childSegments,
        required: childRequired,
        meta: inner.meta,
        // Maps cannot be set from the environment: env-overrides.ts stops at them.
        env: inner.def.type === "record" ? undefined : envName(childSegments, inner.def.type === "array" ? INDEXES[depth] : undefined),
        schema: child,
      };
      section.keys.push(key);
      section.entries.push({ key });
      keys.push(key);
    }
    return section;
  };
  visit(callbacksSchema, [], { description: "The sidecar's own settings." }, false);
  return { sections, keys };
}

function displayPath(segments) {
  return segments.map((s) => `${s.name}${s.list ? "[]" : ""}`).join(".");
}

function envName(segments, itemIndex) {
  let depth = 0;
  const parts = segments.map((s) => (s.list ? `${envTokens(s.name)}_<${INDEXES[depth++]}>` : envTokens(s.name)));
  return `PYFLY_CALLBACKS_${parts.join("_")}${itemIndex ? `_<${itemIndex}>` : ""}`;
}

// ---- JSON Schema (draft-07: what the YAML language server and most editors support best) ----

// Shared by reference (a $ref with nothing beside it: draft-07 ignores a $ref's siblings).
const DEFINITIONS = {
  placeholder: { description: "${VAR} or ${VAR:default}, replaced from the environment", type: "string", pattern: PLACEHOLDER_PATTERN },
  duration: {
    description: 'a number of seconds, or a string like "500ms", "5s", "1m", "2h"',
    anyOf: [{ type: "number", minimum: 0 }, { type: "string", pattern: DURATION_PATTERN }, { $ref: "#/definitions/placeholder" }],
  },
};
const placeholder = () => ({ $ref: "#/definitions/placeholder" });
const nonEmptyString = () => ({ type: "string", pattern: "\\S" });
const durationValue = () => ({ $ref: "#/definitions/duration" });

/** What the loader accepts for a value of this type, placeholders included wherever a string may stand. */
export function valueJsonSchema(type) {
  switch (type.kind) {
    case "bool":
      return { anyOf: [{ type: "boolean" }, { type: "string", enum: [...type.strings] }, placeholder()] };
    case "duration":
      return { allOf: [durationValue()] };
    case "integer":
      return {
        anyOf: [
          { type: "integer", minimum: type.min, ...(type.max < Number.MAX_SAFE_INTEGER ? { maximum: type.max } : {}) },
          { type: "string", pattern: INTEGER_STRING },
          placeholder(),
        ],
      };
    case "number":
      return {
        anyOf: [
          { type: "number", ...(type.exclusiveMin ? { exclusiveMinimum: type.min } : { minimum: type.min }), maximum: type.max },
          { type: "string", pattern: DECIMAL_STRING },
          placeholder(),
        ],
      };
    case "enum":
      return { anyOf: [{ type: "string", enum: [...type.values] }, placeholder()] };
    case "string":
      if (type.pattern) return { type: "string", anyOf: [{ pattern: type.pattern }, { pattern: PLACEHOLDER_PATTERN }] };
      return type.nonEmpty ? nonEmptyString() : { type: "string" };
    case "list": {
      const items = type.of === "duration" ? durationValue() : nonEmptyString();
      const list = { type: "array", items, ...(type.maxItems === undefined ? {} : { maxItems: type.maxItems }) };
      return type.commaSeparated ? { anyOf: [list, { type: "string" }] } : list;
    }
    case "headers":
      return {
        type: "object",
        propertyNames: { pattern: HEADER_NAME_PATTERN },
        additionalProperties: { type: "string", pattern: HEADER_VALUE_PATTERN },
      };
    case "filter":
      return { type: "object" };
    default:
      throw new Error(`unknown value type ${JSON.stringify(type)}`);
  }
}

const plain = (markdown) => markdown.replace(/`/g, "");

export function buildJsonSchema(callbacksSchema, registry) {
  const { sections } = collectReference(callbacksSchema, registry);
  const objectSchema = (section) => {
    const properties = {};
    const required = [];
    for (const entry of section.entries) {
      if (entry.key) {
        const { key } = entry;
        const described = [key.meta.description, key.meta.unset ? `Unset: ${key.meta.unset}.` : undefined].filter(Boolean).join(" ");
        properties[key.name] = {
          description: plain(described),
          ...valueJsonSchema(key.meta.type),
          ...(key.meta.default === undefined ? {} : { default: YAML.parse(key.meta.default) }),
        };
        if (key.required) required.push(key.name);
        continue;
      }
      const child = entry.section;
      const name = child.segments.at(-1).name;
      const object = objectSchema(child);
      properties[name] = child.list
        ? { description: object.description, type: "array", items: { ...object, description: undefined }, default: [] }
        : object;
      if (child.required) required.push(name);
    }
    return {
      description: section.description === undefined ? undefined : plain(section.description),
      type: "object",
      properties,
      ...(required.length > 0 ? { required } : {}),
      additionalProperties: !section.strict,
    };
  };
  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    title: "callback-sidecar application.yml",
    description:
      "Generated from src/config/schema.ts by scripts/config-reference.mjs (npm run config-reference): do not edit. Only pyfly.callbacks is constrained; other keys belong to other components.",
    type: "object",
    definitions: DEFINITIONS,
    properties: {
      pyfly: {
        type: "object",
        properties: { callbacks: { ...objectSchema(sections[0]), description: "callback-sidecar: Kafka records to signed webhooks." } },
      },
    },
  };
}

// ---- Markdown ----

export function typeText(type) {
  switch (type.kind) {
    case "bool":
      return "bool";
    case "duration":
      return "duration";
    case "integer":
      return type.max < Number.MAX_SAFE_INTEGER ? `int ${type.min}..${type.max}` : `int >= ${type.min}`;
    case "number":
      return type.exclusiveMin ? `number > ${type.min}, <= ${type.max}` : `number ${type.min}..${type.max}`;
    case "enum":
      return `one of ${type.values.map((v) => `\`${v}\``).join(" ")}`;
    case "string":
      return type.label ?? (type.nonEmpty ? "string" : "string (may be empty)");
    case "list": {
      const label = type.label ?? `list of ${type.of}s`;
      const limits = type.maxItems === undefined ? "" : ` (at most ${type.maxItems})`;
      return `${label}${limits}${type.commaSeparated ? ", or comma-separated" : ""}`;
    }
    case "headers":
      return "map: header name to string";
    case "filter":
      return "filter (mapping)";
    default:
      throw new Error(`unknown value type ${JSON.stringify(type)}`);
  }
}

const cell = (text) => text.replace(/\|/g, "\\|");

function defaultText(key) {
  if (key.required) return "**required**";
  if (key.meta.default !== undefined) return `\`${key.meta.default}\``;
  return key.meta.unset ?? "none";
}

function envText(key) {
  if (key.env === undefined) return "—";
  return `\`${key.env}\`${key.meta.env ? `, or ${key.meta.env}` : ""}`;
}

export function renderMarkdownSource(callbacksSchema, registry) {
  const { sections } = collectReference(callbacksSchema, registry);
  const out = [INTRO];
  for (const section of sections) {
    const title = section.path === "" ? "pyfly.callbacks" : `pyfly.callbacks.${section.path}`;
    out.push(`### \`${title}\``, "");
    const notes = [section.description];
    const requiredKeys = section.keys.filter((k) => k.required).map((k) => `\`${k.name}\``);
    if (section.list) {
      notes.push(`A list, \`[]\` by default; from the environment item by item, \`${envName(section.segments)}_...\`.`);
    } else if (requiredKeys.length > 0) {
      notes.push(`Optional; when present, ${requiredKeys.join(" and ")} ${requiredKeys.length > 1 ? "are" : "is"} required.`);
    }
    out.push(notes.filter(Boolean).join(" "), "");
    if (section.keys.length === 0) continue;
    out.push("| key | type | default | environment variable | description |", "|---|---|---|---|---|");
    for (const key of section.keys) {
      const row = [`\`${key.path}\``, typeText(key.meta.type), defaultText(key), envText(key), key.meta.description];
      out.push(`| ${row.map(cell).join(" | ")} |`);
    }
    out.push("");
  }
  return out.join("\n");
}

const INTRO = `# Configuration reference

<!-- Generated by scripts/config-reference.mjs from src/config/schema.ts: do not edit. Run \`npm run config-reference\`. -->

Every key under \`pyfly.callbacks\`, with its type and limits, default, environment variable and a
one-line description. This page and the JSON Schema [application.schema.json](application.schema.json)
are generated from the schema the loader validates with (\`src/config/schema.ts\`), and
\`npm test\` fails when either is out of date. What the keys do and how they interact is explained
in [configuring.md](configuring.md).

## The file

The configuration is read from \`--config PATH\`, else \`$PYFLY_CONFIG_FILE\`, else
\`./application.yml\`. Only \`pyfly.callbacks\` belongs to the sidecar: other keys of the file are
left to other components. Inside \`pyfly.callbacks\` every mapping is strict: an unknown key, a
duplicate key or a wrong type is an error that names the key path, and
\`callback-sidecar check-config\` runs the same loading and validation.

How values are written (the **type** column):

- **bool**: \`true\` or \`false\`; also their strings, \`"true"\` and \`"false"\`, as environment variables give them.
- **duration**: a number of seconds (\`10\`, \`0.5\`) or a string with an optional unit \`ms\`, \`s\`, \`m\`
  or \`h\` (\`"500ms"\`, \`"5s"\`, \`"1m"\`, \`"2h"\`; no unit means seconds). Never negative.
- **int**, **number**: a number or its string (\`"8080"\`), within the limits shown.
- **lists** marked *or comma-separated* also take one string, \`orders, invoices\` (the environment form).
  Other lists (\`additional-secrets\`, and the lists of objects: \`configs\`, \`subscriptions\`,
  \`authorized-domains\`) are YAML lists, set from the environment item by item.
- **default**: what applies when the key is absent. A default in \`code\` is the schema's own; a default
  in words is decided when the configuration is loaded (for example from another key).

## Placeholders

\`\${VAR}\` and \`\${VAR:default}\` inside any string value are replaced from the environment before the
configuration is validated, so secrets come from a Kubernetes Secret rather than the file. An unset
variable without a default is an error at that key path. The expanded text is never parsed again
as YAML (a secret stays a string whatever it looks like), and since every key accepts the string
spelling of its value, a placeholder works in any key: \`port: \${ADMIN_PORT:8080}\`,
\`enabled: \${CALLBACKS_ENABLED:false}\`.

## Environment variables

Each key's variable is in the tables: \`PYFLY_CALLBACKS_\` followed by the key path in upper case,
with \`.\` and \`-\` written as \`_\` (relaxed binding, as Spring and pyfly read it). List items are
addressed by index, \`<i>\` and \`<j>\` in the tables: \`PYFLY_CALLBACKS_CONFIGS_0_SECRET\` sets
\`configs[0].secret\` and \`PYFLY_CALLBACKS_CONFIGS_0_SUBSCRIPTIONS_1_TARGET_URL\` the URL of its second
subscription. Values are strings, read as the file's strings are (\`"true"\`, \`"10s"\`, comma-separated
lists). Maps (\`headers\`, \`filter\`; **—** in the tables) cannot be set from the environment. A
\`PYFLY_CALLBACKS_*\` name that names no key is an error, like an unknown key in the file, except the
variables Kubernetes service links inject for a Service named \`pyfly-callbacks...\`, which are
ignored with a warning (set \`enableServiceLinks: false\` in the pod spec). The file is read first,
then placeholders are expanded, then \`PYFLY_CALLBACKS_*\` variables apply, then the conventional ones:

| variable | effect |
|---|---|
| \`KAFKA_BROKERS\` | \`kafka.brokers\`, comma-separated; wins over the file and \`PYFLY_CALLBACKS_KAFKA_BROKERS\`. |
| \`LOG_LEVEL\` | \`log-level\`; wins over the file and \`PYFLY_CALLBACKS_LOG_LEVEL\`. |
| \`HTTPS_PROXY\`, \`HTTP_PROXY\` | The CONNECT proxy for \`https://\` and \`http://\` targets when \`http.proxy.url\` is unset (lower-case names first, as curl reads them). |
| \`NO_PROXY\` | Targets that bypass that proxy, when \`http.proxy.no-proxy\` is unset. |
| \`OTEL_EXPORTER_OTLP_ENDPOINT\`, \`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT\`, \`OTEL_EXPORTER_OTLP_HEADERS\` | Where spans go, when \`tracing.enabled\`. |
| \`OTEL_EXPORTER_OTLP_PROTOCOL\`, \`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL\` | \`http/protobuf\` (the default) or \`http/json\`; anything else stops the start when tracing is on. |
| \`OTEL_SERVICE_NAME\`, \`OTEL_RESOURCE_ATTRIBUTES\`, \`OTEL_TRACES_SAMPLER\`, \`OTEL_TRACES_SAMPLER_ARG\`, \`OTEL_BSP_*\` | The standard OpenTelemetry resource, sampling and batching settings. |
| \`PYFLY_CONFIG_FILE\` | The file to read when \`--config\` is not given. |

## Editor validation

[application.schema.json](application.schema.json) is a JSON Schema (draft-07) of the whole
\`application.yml\`: it constrains \`pyfly.callbacks\` (unknown keys, types, enumerations, limits) and
lets other top-level keys be. With the YAML language server (VS Code's YAML extension, Neovim,
IntelliJ and others), a modeline on the first line of the file turns on completion, hover text and
validation while editing:

\`\`\`yaml
# yaml-language-server: $schema=./docs/application.schema.json
\`\`\`

The path is relative to the YAML file; from elsewhere use the file's raw URL,
\`https://raw.githubusercontent.com/<owner>/<repository>/<ref>/docs/application.schema.json\`. The
schema accepts a placeholder wherever a value may stand and checks each key on its own, a number
written as a string for its form but not its limits; the checks across keys (listed in [configuring.md](configuring.md#rules)), the files named by the TLS keys and
the environment are for \`callback-sidecar check-config\`.

## Keys
`;

// ---- Output ----

async function formatted(text, filePath) {
  const options = (await prettier.resolveConfig(filePath)) ?? {};
  return prettier.format(text, { ...options, filepath: filePath });
}

/** Both files as they are committed: the test compares these with docs/, `main` writes them there. */
export async function renderReference({ callbacksSchema, reference }) {
  const markdown = await formatted(renderMarkdownSource(callbacksSchema, reference), path.join(ROOT, MARKDOWN_FILE));
  const jsonSchema = await formatted(
    JSON.stringify(buildJsonSchema(callbacksSchema, reference), null, 2),
    path.join(ROOT, JSON_SCHEMA_FILE),
  );
  return { markdown, jsonSchema };
}

async function main() {
  const schemaModule = path.join(ROOT, "dist/config/schema.js");
  const { callbacksSchema, reference } = await import(pathToFileURL(schemaModule).href);
  const { markdown, jsonSchema } = await renderReference({ callbacksSchema, reference });
  writeFileSync(path.join(ROOT, MARKDOWN_FILE), markdown);
  writeFileSync(path.join(ROOT, JSON_SCHEMA_FILE), jsonSchema);
  console.log(`wrote ${MARKDOWN_FILE} and ${JSON_SCHEMA_FILE} from ${path.relative(ROOT, schemaModule)}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  await main();
}
