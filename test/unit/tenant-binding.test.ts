import { describe, expect, it } from "vitest";
import { ConfigErrors, type ConfigWarning } from "../../src/config/errors.js";
import { parseSettings } from "../../src/config/load.js";
import { CallbackConfig } from "../../src/domain/models.js";
import { tenantAllowedOnTopic } from "../../src/domain/tenant-binding.js";

const config = (topics?: string[]) => CallbackConfig.parse({ tenant_id: "acme", name: "n", ...(topics ? { topics } : {}) });

describe("tenantAllowedOnTopic", () => {
  it("allows every topic when the config names none (the default)", () => {
    expect(config().topics).toEqual([]);
    expect(tenantAllowedOnTopic(config(), "orders")).toBe(true);
    expect(tenantAllowedOnTopic(config([]), "anything")).toBe(true);
  });

  it("allows only the named topics, compared exactly", () => {
    const bound = config(["orders", "orders.eu"]);
    expect(tenantAllowedOnTopic(bound, "orders")).toBe(true);
    expect(tenantAllowedOnTopic(bound, "orders.eu")).toBe(true);
    expect(tenantAllowedOnTopic(bound, "invoices")).toBe(false);
    expect(tenantAllowedOnTopic(bound, "Orders")).toBe(false);
    expect(tenantAllowedOnTopic(bound, "orders.e")).toBe(false);
    expect(tenantAllowedOnTopic(bound, "")).toBe(false);
  });
});

describe("configs[].topics", () => {
  const yaml = (topics: string, extra = "") => `
pyfly:
  callbacks:
    enabled: true
    kafka: {topics: [orders, invoices]${extra}}
    configs:
      - {tenant-id: acme, name: n, topics: ${topics}}
`;
  const errorsOf = (text: string, env: NodeJS.ProcessEnv = {}) => {
    try {
      parseSettings(text, env);
    } catch (e) {
      if (e instanceof ConfigErrors) return e.errors.map((x) => x.message);
      throw e;
    }
    return [];
  };

  it("reads a list, a comma-separated string and the environment", () => {
    expect(parseSettings(yaml("[orders]"), {}).configs[0]!.topics).toEqual(["orders"]);
    expect(parseSettings(yaml('"orders, invoices"'), {}).configs[0]!.topics).toEqual(["orders", "invoices"]);
    expect(parseSettings(yaml("[orders]"), { PYFLY_CALLBACKS_CONFIGS_0_TOPICS: "invoices" }).configs[0]!.topics).toEqual(["invoices"]);
    expect(parseSettings(yaml("[]"), {}).configs[0]!.topics).toEqual([]);
  });

  it("refuses what cannot be a Kafka topic name, naming the entry", () => {
    expect(errorsOf(yaml('[orders, "a b", "..", "x/y"]'))).toEqual([
      expect.stringMatching(/^pyfly\.callbacks\.configs\[0\]\.topics\[1\]: not a Kafka topic name/),
      expect.stringMatching(/^pyfly\.callbacks\.configs\[0\]\.topics\[2\]: not a Kafka topic name/),
      expect.stringMatching(/^pyfly\.callbacks\.configs\[0\]\.topics\[3\]: not a Kafka topic name/),
    ]);
    expect(errorsOf(yaml(`[${"t".repeat(250)}]`))).toHaveLength(1);
    expect(errorsOf(yaml("{a: b}"))).toEqual([
      expect.stringMatching(/^pyfly\.callbacks\.configs\[0\]\.topics: expected a list of strings/),
    ]);
  });

  it("warns about a bound topic that is never consumed", () => {
    const warnings: ConfigWarning[] = [];
    parseSettings(yaml("[orders, refunds]"), {}, "<inline>", warnings);
    expect(warnings.map((w) => w.message)).toEqual([
      expect.stringMatching(/^pyfly\.callbacks\.configs\[0\]\.topics\[1\]: topic "refunds" is not consumed/),
    ]);
    const none: ConfigWarning[] = [];
    parseSettings(yaml("[orders.eu]", "").replace("topics: [orders, invoices]", 'topic-pattern: "^orders\\\\..*"'), {}, "<inline>", none);
    expect(none).toEqual([]);
  });
});
