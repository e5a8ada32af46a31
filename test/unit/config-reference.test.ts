/*
 * The configuration reference (docs/configuration.md) and the JSON Schema of application.yml
 * (docs/application.schema.json) are generated from src/config/schema.ts by
 * scripts/config-reference.mjs. This test regenerates both and compares them with the committed
 * files, checks that what the reference states (defaults, environment variables) is what the loader
 * does, and that the JSON Schema accepts the repository's configurations and documentation examples
 * and agrees with the loader on what is valid.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import Ajv from "ajv";
import YAML from "yaml";
import { describe, expect, it } from "vitest";
import {
  collectReference,
  DURATION_PATTERN,
  HEADER_NAME_PATTERN,
  HEADER_VALUE_PATTERN,
  JSON_SCHEMA_FILE,
  MARKDOWN_FILE,
  PLACEHOLDER_PATTERN,
  renderReference,
  type ReferenceKey,
} from "../../scripts/config-reference.mjs";
import { parseDurationMs } from "../../src/config/durations.js";
import { applyEnvOverrides } from "../../src/config/env-overrides.js";
import { ConfigErrors } from "../../src/config/errors.js";
import { parseSettings } from "../../src/config/load.js";
import { expandPlaceholders } from "../../src/config/placeholders.js";
import { callbacksSchema, reference } from "../../src/config/schema.js";
import { headerNameProblem, headerValueProblem } from "../../src/domain/header-rules.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const read = (file: string) => readFileSync(path.join(ROOT, file), "utf8");

const { keys } = collectReference(callbacksSchema, reference);
const jsonSchema = JSON.parse(read(JSON_SCHEMA_FILE)) as Record<string, unknown>;
const ajv = new Ajv({ allErrors: true });
const validateDocument = ajv.compile(jsonSchema);

/** The JSON Schema's verdict on a parsed document: undefined when valid, else the errors. */
function schemaErrors(document: unknown): string | undefined {
  if (validateDocument(document)) return undefined;
  return ajv.errorsText(validateDocument.errors, { separator: "\n" });
}

/** The loader's verdict on a YAML text: undefined when it loads, else the messages. */
function loaderErrors(yamlText: string, env: NodeJS.ProcessEnv = {}): string | undefined {
  try {
    parseSettings(yamlText, env);
    return undefined;
  } catch (error) {
    if (error instanceof ConfigErrors) return error.errors.map((e) => e.message).join("\n");
    throw error;
  }
}

const parseYaml = (text: string): unknown => YAML.parse(text) ?? {};

describe("the generated reference", () => {
  it("matches docs/configuration.md and docs/application.schema.json", async () => {
    const generated = await renderReference({ callbacksSchema, reference });
    expect(read(MARKDOWN_FILE), `${MARKDOWN_FILE} is out of date: run npm run config-reference`).toBe(generated.markdown);
    expect(read(JSON_SCHEMA_FILE), `${JSON_SCHEMA_FILE} is out of date: run npm run config-reference`).toBe(generated.jsonSchema);
  });

  it("is a valid draft-07 JSON Schema", () => {
    expect(ajv.validateSchema(jsonSchema), ajv.errorsText()).toBe(true);
    // Editors (the YAML language server) compile patterns with the u flag, which is stricter.
    const patterns = [...JSON.stringify(jsonSchema).matchAll(/"pattern":("(?:[^"\\]|\\.)*")/g)].map(
      (m) => JSON.parse(m[1] as string) as string,
    );
    expect(patterns.length).toBeGreaterThan(0);
    for (const pattern of patterns) expect(() => new RegExp(pattern, "u"), pattern).not.toThrow();
  });

  it("documents the whole schema, lists of objects and maps included", () => {
    const paths = keys.map((k) => k.path);
    expect(paths).toEqual(expect.arrayContaining(["http.timeout", "kafka.sasl.password", "configs[].secret"]));
    expect(paths).toEqual(
      expect.arrayContaining([
        "configs[].authorized-domains[].domain",
        "configs[].subscriptions[].headers",
        "configs[].subscriptions[].filter",
        "configs[].subscriptions[].rate-limit.per-second",
        "configs[].tls.min-version",
      ]),
    );
    expect(new Set(paths).size).toBe(paths.length);
  });

  // A default stated in the reference is read as YAML and parsed by the key's own schema: it must give
  // what the schema gives for an absent key. Keys without a stated default must have none.
  it.each(keys.map((k) => [k.path, k] as const))("states the schema's own default for %s", (_path, key: ReferenceKey) => {
    const absent = key.schema.safeParse(undefined);
    if (key.required) {
      expect(absent.success).toBe(false);
      expect(key.meta.default).toBeUndefined();
      return;
    }
    expect(absent.success).toBe(true);
    if (key.meta.default === undefined) {
      expect(absent.data).toBeUndefined();
    } else {
      expect(key.schema.parse(YAML.parse(key.meta.default))).toEqual(absent.data);
    }
  });

  // The environment variable each row names sets that very key.
  it.each(keys.filter((k) => k.env !== undefined).map((k) => [k.env as string, k] as const))("%s sets its key", (name, key) => {
    const indexes: number[] = [];
    const concrete = name.replace(/<[a-z]>/g, () => String(indexes.push(indexes.length) - 1));
    const document: Record<string, unknown> = {};
    expect(applyEnvOverrides(document, callbacksSchema, { [concrete]: "value" })).toEqual([]);
    const expected: (string | number)[] = ["pyfly", "callbacks"];
    let next = 0;
    for (const segment of key.segments) {
      expected.push(segment.name);
      if (segment.list) expected.push(indexes[next++] as number);
    }
    if (next < indexes.length) expected.push(indexes[next] as number);
    const found = expected.reduce<unknown>((node, step) => (node as Record<string | number, unknown> | undefined)?.[step], document);
    expect(found).toBe("value");
  });
});

describe("the JSON Schema and the loader agree", () => {
  // A document where every list of objects has one item, so any key can be set from the environment.
  const BASE = `
pyfly:
  callbacks:
    configs:
      - tenant-id: acme
        name: hooks
        rate-limit: { per-second: 1 }
        authorized-domains: [{ domain: hooks.example.com }]
        subscriptions:
          - { event-type: OrderPlaced, target-url: "https://hooks.example.com/orders", rate-limit: { per-second: 1 } }
`;
  const concrete = (name: string) => name.replace(/<[a-z]>/g, "0");
  /** The base document with one variable applied as the loader applies it, for the JSON Schema. */
  const withEnv = (env: Record<string, string>) => {
    const document = parseYaml(BASE) as Record<string, unknown>;
    expect(applyEnvOverrides(document, callbacksSchema, env)).toEqual([]);
    return document;
  };
  const envForm = (value: unknown) => (Array.isArray(value) ? value.join(",") : String(value));

  it("on the base document", () => {
    expect(loaderErrors(BASE)).toBeUndefined();
    expect(schemaErrors(parseYaml(BASE))).toBeUndefined();
  });

  // Environment values are strings: "false", "10s", "localhost:9092", "10s,1m,10m,1h".
  const withDefaults = keys.filter((k) => k.env !== undefined && k.meta.default !== undefined && !/_<[a-z]>$/.test(k.env));
  it.each(withDefaults.map((k) => [k.path, k] as const))("on %s given its default as an environment string", (_path, key) => {
    const env = { [concrete(key.env as string)]: envForm(YAML.parse(key.meta.default as string)) };
    expect(loaderErrors(BASE, env)).toBeUndefined();
    expect(schemaErrors(withEnv(env))).toBeUndefined();
  });

  // What the loader refuses for each typed key, the JSON Schema refuses too.
  const invalid: Partial<Record<string, string>> = { bool: "yes", duration: "10 parsecs", integer: "1.5", number: "-1", enum: "bogus" };
  const typed = keys.filter((k) => k.env !== undefined && invalid[k.meta.type.kind] !== undefined);
  it.each(typed.map((k) => [k.path, k] as const))("refusing a wrong %s", (_path, key) => {
    const env = { [concrete(key.env as string)]: invalid[key.meta.type.kind] as string };
    expect(loaderErrors(BASE, env)).toBeDefined();
    expect(schemaErrors(withEnv(env))).toBeDefined();
  });

  // ${VAR} may stand for any value: the loader expands it before it validates.
  it.each(keys.filter((k) => k.env !== undefined).map((k) => [k.path, k] as const))("accepting a placeholder in %s", (_path, key) => {
    expect(schemaErrors(withEnv({ [concrete(key.env as string)]: "${CALLBACK_VALUE:x}" }))).toBeUndefined();
  });

  it.each([
    ["an empty file", ""],
    ["other components' keys", "spring: { application: { name: orders } }\npyfly: { web: { port: 8000 } }\n"],
    [
      "string spellings, as the environment gives them",
      `
pyfly:
  callbacks:
    enabled: "True"
    shutdown-grace: "30"
    log-level: debug
    http:
      timeout: "500ms"
      max-connections-per-host: " 64 "
      allow-private-networks: "false"
      allowed-cidrs: "10.0.0.0/8, 192.168.0.0/16"
      circuit-breaker: { failure-threshold: "3", recovery-timeout: 1.5 }
    retry: { jitter: "0.2", tiers: "10s,1m", schedule: [1s, 5, "1m"] }
    kafka: { brokers: "a:9092,b:9092", topics: orders, max-in-flight: "16", ordering: key }
    server: { port: "0" }
`,
    ],
    [
      "placeholders in typed keys",
      `
pyfly:
  callbacks:
    enabled: \${CALLBACKS_ENABLED:true}
    http: { timeout: "\${HTTP_TIMEOUT:5s}", dry-run: "\${DRY_RUN:false}" }
    kafka: { brokers: "\${KAFKA_BROKERS:localhost:9092}", topics: [orders], ordering: "\${ORDERING:none}" }
    server: { port: "\${ADMIN_PORT:8080}" }
    configs:
      - tenant-id: acme
        name: hooks
        max-attempts: \${MAX_ATTEMPTS:3}
        subscriptions: [{ event-type: "*", target-url: "https://\${HOOK_HOST:hooks.example.com}/all" }]
`,
    ],
    [
      "a full tenant config",
      `
pyfly:
  callbacks:
    enabled: true
    kafka: { topic-pattern: "^events\\\\..*" }
    tracing: { enabled: false, send-trace-context: true }
    configs:
      - tenant-id: acme
        name: hooks
        enabled: "false"
        signing-scheme: pyfly-timestamped
        secret: a-secret-of-more-than-16-bytes
        additional-secrets: [an-older-secret-of-16-bytes]
        signature-header: Stripe-Signature
        retry-schedule: 5s, 30s, 2m
        rate-limit: { per-second: "2.5", burst: 4 }
        send-trace-context: "true"
        topics: [events.orders]
        authorized-domains: [{ domain: hooks.example.com, description: prod }]
        subscriptions:
          - event-type: OrderPlaced
            target-url: https://hooks.example.com/orders
            headers: { X-Api-Version: "2", Authorization: "Bearer \${ACME_TOKEN:t}" }
            format: cloudevents-structured
            filter: { payload.amount: { $gte: 100 }, $or: [{ headers.x-region: eu }, { payload.vip: true }] }
`,
    ],
  ])("accepting %s", (_name, yamlText) => {
    expect(loaderErrors(yamlText)).toBeUndefined();
    expect(schemaErrors(parseYaml(yamlText))).toBeUndefined();
  });

  it.each([
    [
      "a typo'd key (http.timout)",
      "pyfly: { callbacks: { http: { timout: 5s } } }",
      /must NOT have additional properties|should NOT have additional properties/,
    ],
    ["a typo'd top-level key of pyfly.callbacks", "pyfly: { callbacks: { enable: true } }", /additional properties/],
    [
      "a typo'd key in a subscription",
      "pyfly: { callbacks: { configs: [{ tenant-id: a, name: b, subscriptions: [{ event-type: E, target-url: 'https://x.example', header: {} }] }] } }",
      /additional properties/,
    ],
    ["a duration in words", "pyfly: { callbacks: { http: { timeout: ten seconds } } }", /timeout/],
    ["a port out of range", "pyfly: { callbacks: { server: { port: 70000 } } }", /port/],
    ["a negative duration", "pyfly: { callbacks: { shutdown-grace: -5 } }", /shutdown-grace/],
    ["yes for a bool", "pyfly: { callbacks: { enabled: yes } }", /enabled/],
    ["an unknown ordering", "pyfly: { callbacks: { kafka: { ordering: random } } }", /ordering/],
    ["a mapping where a list goes", "pyfly: { callbacks: { configs: { acme: {} } } }", /configs/],
    ["a config without its name", "pyfly: { callbacks: { configs: [{ tenant-id: acme }] } }", /name/],
    [
      "a rate limit without per-second",
      "pyfly: { callbacks: { configs: [{ tenant-id: a, name: b, rate-limit: { burst: 2 } }] } }",
      /per-second/,
    ],
    [
      "an ftp target",
      "pyfly: { callbacks: { configs: [{ tenant-id: a, name: b, subscriptions: [{ event-type: E, target-url: 'ftp://x.example/' }] }] } }",
      /target-url/,
    ],
    [
      "a header name with a space",
      "pyfly: { callbacks: { configs: [{ tenant-id: a, name: b, subscriptions: [{ event-type: E, target-url: 'https://x.example', headers: { 'X Api': v } }] }] } }",
      /headers/,
    ],
    [
      "a header value that is a number",
      "pyfly: { callbacks: { configs: [{ tenant-id: a, name: b, subscriptions: [{ event-type: E, target-url: 'https://x.example', headers: { X-Count: 5 } }] }] } }",
      /headers/,
    ],
    ["a null section", "pyfly: { callbacks: { http: } }", /http/],
    ["a retry schedule of 101 entries", `pyfly: { callbacks: { retry: { schedule: [${Array(101).fill("1s").join(", ")}] } } }`, /schedule/],
  ])("refusing %s", (_name, yamlText, where) => {
    expect(loaderErrors(yamlText)).toBeDefined();
    const errors = schemaErrors(parseYaml(yamlText));
    expect(errors).toBeDefined();
    expect(errors).toMatch(where);
  });

  it("on placeholders: the pattern matches exactly what the loader expands", () => {
    const placeholder = new RegExp(PLACEHOLDER_PATTERN);
    for (const text of ["${A}", "${A:}", "${A_1:x:y}", "https://${HOST:localhost}/x", "a${_B}c"]) {
      expect(placeholder.test(text), text).toBe(true);
      expect(expandPlaceholders(text, {}, "", []), text).not.toBe(text);
    }
    for (const text of ["$A", "${1A}", "${A", "{A}", "$ {A}", "${A-B}"]) {
      expect(placeholder.test(text), text).toBe(false);
      expect(expandPlaceholders(text, {}, "", []), text).toBe(text);
    }
  });

  it("on durations, headers and header values", () => {
    const duration = new RegExp(DURATION_PATTERN);
    for (const text of ["5", "0.5", "5s", "500ms", "1M", "2H", " 10 ", "1.5S", "250MS", "-5s", "5 days", "s", "", "1e3", "5sec", "1.s"]) {
      expect(duration.test(text), text).toBe(parseDurationMs(text) !== undefined);
    }
    const name = new RegExp(HEADER_NAME_PATTERN);
    for (const text of ["X-Api", "Stripe-Signature", "a!#$%&'*+.^_`|~9", "X Api", "X:Api", "", "Ä", "X\tY", "(x)"]) {
      expect(name.test(text), text).toBe(headerNameProblem(text) === undefined);
    }
    const value = new RegExp(HEADER_VALUE_PATTERN);
    for (const text of ["", "v", "Bearer abc", " v", "v ", "a\u007fb", "a\tb", "é", "~!", "a  b"]) {
      expect(value.test(text), JSON.stringify(text)).toBe(headerValueProblem(text) === undefined);
    }
  });
});

// ---- The repository's configurations and the examples in its documentation ----

function configFiles(): string[] {
  const found = ["application.yml"];
  const walk = (dir: string) => {
    for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name === "application.yml" || entry.name === "application.yaml") found.push(file);
    }
  };
  walk("deploy");
  return found;
}

interface DocBlock {
  where: string;
  text: string;
}

/** Every ```yaml block of README.md and docs/*.md, with the fence's indentation removed. */
function yamlBlocks(): DocBlock[] {
  const files = [
    "README.md",
    ...readdirSync(path.join(ROOT, "docs"), { withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith(".md"))
      .map((e) => `docs/${e.name}`),
  ];
  const blocks: DocBlock[] = [];
  for (const file of files) {
    const lines = read(file).split("\n");
    for (let i = 0; i < lines.length; i++) {
      const open = /^(\s*)```ya?ml\b/.exec(lines[i] as string);
      if (!open) continue;
      const indent = (open[1] as string).length;
      const body: string[] = [];
      let j = i + 1;
      for (; j < lines.length && !/^\s*```\s*$/.test(lines[j] as string); j++) body.push((lines[j] as string).slice(indent));
      blocks.push({ where: `${file}:${i + 1}`, text: body.join("\n") });
      i = j;
    }
  }
  return blocks;
}

const topKeys = (section: string) =>
  new Set(keys.filter((k) => k.path.startsWith(section)).map((k) => k.path.slice(section.length).split(/[.[]/)[0] as string));
const CALLBACKS_KEYS = new Set([...topKeys("")]);
const CONFIG_KEYS = topKeys("configs[].");

/**
 * How a documentation block is checked: a whole document as it is; a fragment of pyfly.callbacks
 * (its top-level keys are keys of pyfly.callbacks) or of a tenant config (keys of configs[], with a
 * tenant-id and name added if it has none) wrapped where it belongs; anything else (Helm values,
 * manifests, a template that is not YAML) is not an application.yml and is skipped.
 */
function classify(block: DocBlock): { document: unknown; as: string } | { skip: string } {
  let parsed: unknown;
  try {
    parsed = YAML.parse(block.text);
  } catch {
    return { skip: "not YAML (a template)" };
  }
  if (parsed === null || parsed === undefined) return { skip: "no content (a comment)" };
  if (typeof parsed !== "object" || Array.isArray(parsed)) return { skip: "not a mapping" };
  const top = Object.keys(parsed);
  if (top.includes("pyfly")) return { document: parsed, as: "a whole application.yml" };
  if (top.length > 0 && top.every((k) => CALLBACKS_KEYS.has(k)))
    return { document: { pyfly: { callbacks: parsed } }, as: "keys of pyfly.callbacks" };
  if (top.length > 0 && top.every((k) => CONFIG_KEYS.has(k))) {
    return { document: { pyfly: { callbacks: { configs: [{ "tenant-id": "t", name: "n", ...parsed }] } } }, as: "keys of a tenant config" };
  }
  return { skip: `not pyfly.callbacks keys (${top.slice(0, 3).join(", ")})` };
}

describe("the JSON Schema accepts", () => {
  it.each(configFiles())("%s", (file) => {
    const text = read(file);
    expect(schemaErrors(parseYaml(text))).toBeUndefined();
  });

  const blocks = yamlBlocks().map((b) => ({ ...b, ...classify(b) }));
  const checked = blocks.filter((b): b is DocBlock & { document: unknown; as: string } => "document" in b);
  const skipped = blocks.filter((b): b is DocBlock & { skip: string } => "skip" in b);

  it("at least one whole application.yml among the documentation's examples", () => {
    expect(checked.filter((b) => b.as === "a whole application.yml").length).toBeGreaterThan(0);
  });

  it.each(checked.map((b) => [b.where, b.as, b] as const))("the example at %s (%s)", (_where, _as, block) => {
    expect(schemaErrors(block.document)).toBeUndefined();
  });

  // Listed so the run shows what was left out, and why; a block naming pyfly is never left out.
  it.each(skipped.map((b) => [b.where, b.skip, b] as const))("(skipped %s: %s)", (_where, _why, block) => {
    expect(block.text).not.toMatch(/^pyfly:/m);
  });
});
