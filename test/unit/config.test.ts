import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseSettings } from "../../src/config/load.js";
import { ConfigErrors } from "../../src/config/errors.js";
import { parseDurationMs } from "../../src/config/durations.js";
import { createTestCa, type IssuedCertificate, type TestCa } from "../support/test-ca.js";

function errorsOf(yaml: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseSettings(yaml, env);
  } catch (e) {
    if (e instanceof ConfigErrors) return e.errors.map((x) => x.message);
    throw e;
  }
  throw new Error("expected the configuration to be rejected");
}

describe("durations", () => {
  it.each([
    [5, 5000],
    [0.5, 500],
    ["5s", 5000],
    ["500ms", 500],
    ["1m", 60_000],
    ["2h", 7_200_000],
    ["  10 ", 10_000],
    ["1.5S", 1500],
    ["250MS", 250],
  ])("%j is %d ms", (input, ms) => expect(parseDurationMs(input)).toBe(ms));

  it.each([[-1], ["-5s"], ["5 days"], ["s"], [""], [true], [null], ["1e3"], [Number.NaN]])("%j is not a duration", (input) =>
    expect(parseDurationMs(input)).toBeUndefined(),
  );
});

describe("configuration defaults", () => {
  it("gives the reference defaults for an empty file", () => {
    const s = parseSettings("", {});
    expect(s.enabled).toBe(false);
    expect(s.http.timeoutMs).toBe(10_000);
    expect(s.http.circuitBreaker).toEqual({ failureThreshold: 5, recoveryTimeoutMs: 30_000 });
    expect(s.shutdownGraceMs).toBe(25_000);
    expect(s.server.port).toBe(8080);
    expect(s.kafka.tenantHeader).toBe("x-tenant-id");
    expect(s.configs).toEqual([]);
  });

  it("reads the reference's example and tenant configs with their defaults", () => {
    const s = parseSettings(
      `
pyfly:
  callbacks:
    http:
      timeout: 5s
      circuit-breaker:
        failure-threshold: 3
        recovery-timeout: 60
    configs:
      - tenant-id: acme
        name: webhook-suite
        secret: topsecret
        authorized-domains:
          - domain: customer.example.com
        subscriptions:
          - event-type: OrderPlaced
            target-url: https://customer.example.com/hooks/orders
            headers: { X-Team: billing }
`,
      {},
    );
    expect(s.http.timeoutMs).toBe(5000);
    expect(s.http.circuitBreaker).toEqual({ failureThreshold: 3, recoveryTimeoutMs: 60_000 });
    const [config] = s.configs;
    expect(config).toMatchObject({
      tenant_id: "acme",
      name: "webhook-suite",
      enabled: true,
      secret: "topsecret",
      max_attempts: 5,
      backoff_ms: 5000,
      signing_scheme: "pyfly",
      authorized_domains: [{ domain: "customer.example.com", description: "" }],
      subscriptions: [
        { event_type: "OrderPlaced", target_url: "https://customer.example.com/hooks/orders", headers: { "X-Team": "billing" } },
      ],
    });
    // Stable: the same tenant and name give the same id on every load.
    expect(parseSettings("pyfly: {callbacks: {configs: [{tenant-id: acme, name: webhook-suite}]}}", {}).configs[0]?.id).toBe(config?.id);
  });

  it("leaves keys outside pyfly.callbacks alone", () => {
    expect(() =>
      parseSettings("server: {port: 1}\npyfly: {web: {port: 2}, callbacks: {enabled: true, kafka: {topics: [a]}}}", {}),
    ).not.toThrow();
  });
});

describe("environment", () => {
  const base = `
pyfly:
  callbacks:
    configs:
      - tenant-id: acme
        name: main
        secret: \${ACME_SECRET}
        backoff-ms: \${ACME_BACKOFF:250}
`;

  it("expands placeholders, with defaults, and keeps secrets as strings", () => {
    const s = parseSettings(base, { ACME_SECRET: "0123" });
    expect(s.configs[0]?.secret).toBe("0123");
    expect(s.configs[0]?.backoff_ms).toBe(250);
  });

  it("names the key and variable of an unset placeholder", () => {
    expect(errorsOf(base, {})).toEqual(
      ["configs[0].secret: environment variable ACME_SECRET is not set and the placeholder has no default"].map(
        (m) => `pyfly.callbacks.${m}`,
      ),
    );
  });

  it("overrides keys with relaxed names, list items by index", () => {
    const s = parseSettings(base, {
      ACME_SECRET: "x",
      PYFLY_CALLBACKS_HTTP_TIMEOUT: "5s",
      PYFLY_CALLBACKS_HTTP_CIRCUIT_BREAKER_FAILURE_THRESHOLD: "9",
      PYFLY_CALLBACKS_ENABLED: "true",
      PYFLY_CALLBACKS_KAFKA_TOPICS: "orders, invoices",
      PYFLY_CALLBACKS_CONFIGS_0_SECRET: "from-env",
      PYFLY_CALLBACKS_CONFIGS_0_MAX_ATTEMPTS: "2",
      KAFKA_BROKERS: "k1:9092,k2:9092",
      LOG_LEVEL: "debug",
    });
    expect(s.http.timeoutMs).toBe(5000);
    expect(s.http.circuitBreaker.failureThreshold).toBe(9);
    expect(s.enabled).toBe(true);
    expect(s.kafka.topics).toEqual(["orders", "invoices"]);
    expect(s.configs[0]?.secret).toBe("from-env");
    expect(s.configs[0]?.max_attempts).toBe(2);
    expect(s.kafka.brokers).toEqual(["k1:9092", "k2:9092"]);
    expect(s.logLevel).toBe("debug");
  });

  it("rejects an environment name that matches no key", () => {
    expect(errorsOf("", { PYFLY_CALLBACKS_HTTP_TIMEOT: "5s" })).toEqual([
      "environment PYFLY_CALLBACKS_HTTP_TIMEOT: does not name a pyfly.callbacks key",
    ]);
  });
});

describe("configuration errors name the key path", () => {
  it.each([
    ["pyfly: {callbacks: {http: {timeout: -5s}}}", "pyfly.callbacks.http.timeout: expected a number of seconds"],
    ["pyfly: {callbacks: {http: {timeot: 5s}}}", 'pyfly.callbacks.http: Unrecognized key: "timeot"'],
    ["pyfly: {callbacks: {enabled: yes-please}}", "pyfly.callbacks.enabled: expected true or false"],
    ["pyfly: {callbacks: {server: {port: 70000}}}", "pyfly.callbacks.server.port: expected an integer <= 65535"],
    [
      "pyfly: {callbacks: {configs: [{tenant-id: a, name: n, max-attempts: many}]}}",
      "pyfly.callbacks.configs[0].max-attempts: expected an integer >= 0",
    ],
    [
      "pyfly: {callbacks: {configs: [{tenant-id: a, name: n, subscriptions: [{event-type: E, target-url: 'ftp://x/'}]}]}}",
      "pyfly.callbacks.configs[0].subscriptions[0].target-url: expected an http:// or https:// URL",
    ],
    [
      "pyfly: {callbacks: {configs: [{tenant-id: a, name: n, subscriptions: [{event-type: E, target-url: 'not a url'}]}]}}",
      "pyfly.callbacks.configs[0].subscriptions[0].target-url: expected an absolute",
    ],
    [
      "pyfly: {callbacks: {configs: [{tenant-id: a, name: n}, {tenant-id: a, name: n}]}}",
      'pyfly.callbacks.configs[1].name: duplicate config "n" for tenant "a"',
    ],
    [
      "pyfly: {callbacks: {configs: [{tenant-id: a, name: n, id: x}, {tenant-id: a, name: m, id: x}]}}",
      "pyfly.callbacks.configs[1].id: duplicate id (also at configs[0])",
    ],
    [
      "pyfly: {callbacks: {configs: [{tenant-id: a, name: n, signing-scheme: standard-webhooks}]}}",
      "pyfly.callbacks.configs[0].secret: signing-scheme standard-webhooks needs a secret",
    ],
    [
      "pyfly: {callbacks: {configs: [{tenant-id: a, name: n, signing-scheme: hmac}]}}",
      "pyfly.callbacks.configs[0].signing-scheme: expected one of pyfly, pyfly-timestamped, github, standard-webhooks",
    ],
    ["pyfly: {callbacks: {enabled: true}}", "pyfly.callbacks.kafka.topics: no topic to consume"],
    [
      "pyfly: {callbacks: {kafka: {group-id: g, topics: [orders, g.retry]}}}",
      'pyfly.callbacks.retry.topic: topic "g.retry" is also consumed',
    ],
    ["pyfly: [1, 2]", "pyfly: expected a mapping"],
    ["pyfly: {callbacks: {http: {timeout: 5s}}\n  bad: [", "<inline>:"],
  ])("%s", (yaml, message) => {
    const errors = errorsOf(yaml);
    expect(
      errors.some((e) => e.startsWith(message)),
      errors.join("\n"),
    ).toBe(true);
  });

  it("never echoes a secret in an error", () => {
    const errors = errorsOf("pyfly: {callbacks: {configs: [{tenant-id: a, name: n, secret: [s3cr3t-value]}]}}");
    expect(errors.join("\n")).not.toContain("s3cr3t-value");
  });
});

describe("subscription headers follow the outgoing header rule", () => {
  const withHeaders = (headers: Record<string, string>) =>
    JSON.stringify({
      pyfly: {
        callbacks: {
          configs: [{ "tenant-id": "a", name: "n", subscriptions: [{ "event-type": "E", "target-url": "https://a.example/", headers }] }],
        },
      },
    });
  const at = "pyfly.callbacks.configs[0].subscriptions[0].headers";

  it.each([
    ["a CJK value", { "X-Team": "注文" }, `${at}.X-Team: header value contains a non-ASCII character`],
    ["a latin1 value", { "X-Team": "société" }, `${at}.X-Team: header value contains a non-ASCII character`],
    ["a tab", { "X-Team": "a\tb" }, `${at}.X-Team: header value contains a control character`],
    ["DEL", { "X-Team": "a\u007f" }, `${at}.X-Team: header value contains a control character`],
    [
      "a trailing newline (a secret read from a file)",
      { Authorization: "Bearer t0ken\n" },
      `${at}.Authorization: header value contains a control character`,
    ],
    ["a trailing space", { "X-Team": "billing " }, `${at}.X-Team: header value starts or ends with a space`],
    ["a name with a space", { "X Team": "billing" }, `${at}.X Team: header name is not a valid HTTP header name (RFC 9110 token)`],
    ["a non-ASCII name", { "X-Équipe": "billing" }, `${at}.X-Équipe: header name is not a valid HTTP header name`],
  ])("refuses %s, naming the key path", (_what, headers, message) => {
    const errors = errorsOf(withHeaders(headers));
    expect(
      errors.some((e) => e.startsWith(message)),
      errors.join("\n"),
    ).toBe(true);
  });

  it("never echoes a header value in an error", () => {
    const errors = errorsOf(withHeaders({ Authorization: "Bearer s3cr3t-t0ken\u0000" }));
    expect(errors.join("\n")).not.toContain("s3cr3t");
  });

  it("accepts printable ASCII, inner spaces and an empty value", () => {
    const settings = parseSettings(withHeaders({ Authorization: "Bearer abc.def~1", "X-Empty": "", "X-Team": "billing / eu" }), {});
    expect(settings.configs[0]?.subscriptions[0]?.headers).toEqual({
      Authorization: "Bearer abc.def~1",
      "X-Empty": "",
      "X-Team": "billing / eu",
    });
  });
});

describe("retry schedules, delay tiers and rate limits", () => {
  const tenant = (extra: string) => `
pyfly:
  callbacks:
    retry:
      schedule: [2s, 1m]
    configs:
      - tenant-id: acme
        name: n
${extra}
        subscriptions:
          - event-type: "*"
            target-url: https://hooks.example.com/h
            rate-limit: { per-second: 20 }
`;

  it("a config's retry-schedule sets its attempts (entries + 1) and waits; a limit's burst defaults to 1", () => {
    const [config] = parseSettings(tenant("        retry-schedule: [5s, 30s, 2m, 10m, 1h, 6h]"), {}).configs;
    expect(config?.retry_schedule).toEqual([5_000, 30_000, 120_000, 600_000, 3_600_000, 21_600_000]);
    expect(config?.max_attempts).toBe(7);
    expect(config?.subscriptions[0]?.rate_limit).toEqual({ per_second: 20, burst: 1 });
    expect(config?.rate_limit).toBeNull();
  });

  it("the global retry.schedule applies to a config that sets no retry key; pyfly's keys keep pyfly's rule", () => {
    expect(parseSettings(tenant(""), {}).configs[0]?.retry_schedule).toEqual([2_000, 60_000]);
    const [pyfly] = parseSettings(tenant("        max-attempts: 3"), {}).configs;
    expect(pyfly?.retry_schedule).toBeNull();
    expect([pyfly?.max_attempts, pyfly?.backoff_ms]).toEqual([3, 5_000]);
  });

  it("without any of the new keys, pyfly's defaults are unchanged: 5 attempts, 5 s doubling, tiers 10s 1m 10m 1h", () => {
    const s = parseSettings("pyfly:\n  callbacks:\n    configs: [{ tenant-id: a, name: n }]\n", {});
    expect([s.configs[0]?.max_attempts, s.configs[0]?.backoff_ms, s.configs[0]?.retry_schedule]).toEqual([5, 5_000, null]);
    expect(s.retry.tiersMs).toEqual([10_000, 60_000, 600_000, 3_600_000]);
  });

  it.each([
    ["        retry-schedule: [5s, soon]", "pyfly.callbacks.configs[0].retry-schedule[1]: expected a number of seconds"],
    [
      "        retry-schedule: [5s]\n        backoff-ms: 100",
      "pyfly.callbacks.configs[0].retry-schedule: set either retry-schedule or max-attempts/backoff-ms",
    ],
    ["        rate-limit: { per-second: 0 }", "pyfly.callbacks.configs[0].rate-limit.per-second: expected a number > 0"],
    ["        rate-limit: { per-second: 5, burts: 2 }", 'pyfly.callbacks.configs[0].rate-limit: Unrecognized key: "burts"'],
  ])("%s is refused, naming the key path", (extra, message) => {
    expect(errorsOf(tenant(extra)).join("\n")).toContain(message);
  });

  it("a delay tier under 1 s, or one whose topic name Kafka would refuse, is refused naming retry.tiers[i]", () => {
    expect(errorsOf("pyfly:\n  callbacks:\n    retry:\n      tiers: [500ms]\n").join("\n")).toContain(
      "pyfly.callbacks.retry.tiers[0]: a delay tier must be at least 1s",
    );
    expect(errorsOf("pyfly:\n  callbacks:\n    retry:\n      tiers: [1s]\n      topic: " + "r".repeat(248) + "\n").join("\n")).toContain(
      "pyfly.callbacks.retry.tiers[0]: gives the tier topic name",
    );
  });
});

describe("signature schemes and headers", () => {
  const tenant = (extra: string) =>
    `pyfly:\n  callbacks:\n    configs:\n      - tenant-id: acme\n        name: n\n        secret: s3cr3t\n${extra}\n        subscriptions:\n          - event-type: "*"\n            target-url: https://hooks.example.com/h\n`;

  it("pyfly-timestamped rotates with additional-secrets and may sign under another header (Stripe-Signature)", () => {
    const [c] = parseSettings(
      tenant("        signing-scheme: pyfly-timestamped\n        additional-secrets: [old]\n        signature-header: Stripe-Signature"),
      {},
    ).configs;
    expect([c?.signing_scheme, c?.additional_secrets, c?.signature_header]).toEqual(["pyfly-timestamped", ["old"], "Stripe-Signature"]);
  });

  it.each([
    [
      "        signing-scheme: github\n        additional-secrets: [old]",
      "configs[0].additional-secrets: secret rotation needs signing-scheme pyfly-timestamped or standard-webhooks",
    ],
    ["        signature-header: X-Sig", "configs[0].signature-header: applies to signing-scheme pyfly-timestamped or github only"],
    [
      "        signing-scheme: github\n        signature-header: Content-Length",
      "configs[0].signature-header: names a header the HTTP client or callback-sidecar sets",
    ],
    ["        signing-scheme: github\n        signature-header: bad header", "configs[0].signature-header: header name"],
  ])("%s is refused, naming the key path", (extra, message) => {
    expect(errorsOf(tenant(extra)).join("\n")).toContain(message);
  });

  it("a subscription header cannot take the config's own signature header", () => {
    const yaml = tenant("        signing-scheme: github\n        signature-header: X-Sig").replace(
      "target-url: https://hooks.example.com/h",
      "target-url: https://hooks.example.com/h\n            headers: { x-sig: forged }",
    );
    expect(errorsOf(yaml).join("\n")).toContain("configs[0].subscriptions[0].headers.x-sig: is set by callback-sidecar");
  });
});

describe("payload filters, egress proxy and receiver TLS", () => {
  const subscription = (extra: string) => `
pyfly:
  callbacks:
    configs:
      - tenant-id: acme
        name: n
        subscriptions:
          - event-type: OrderPlaced
            target-url: https://hooks.example.com/h
${extra}
`;

  it("a filter keeps a 20-digit integer exact (YAML integers beyond 2^53 are read as BigInt)", () => {
    const [config] = parseSettings(
      subscription("            filter: { payload.id: 12345678901234567891, headers.x-region: { $in: [eu] } }"),
      {},
    ).configs;
    expect(config?.subscriptions[0]?.filter).toEqual({ "payload.id": 12345678901234567891n, "headers.x-region": { $in: ["eu"] } });
  });

  it.each([
    [
      "            filter: { payload.amount: { $gte: 1, $regex: x } }",
      'pyfly.callbacks.configs[0].subscriptions[0].filter.payload.amount.$regex: Invalid filter at "payload.amount.$regex": unknown operator $regex',
    ],
    ["            filter: { headers.x-region: { $in: eu } }", "pyfly.callbacks.configs[0].subscriptions[0].filter.headers.x-region.$in:"],
    ["            filter: { $or: [{ body.x: 1 }] }", "pyfly.callbacks.configs[0].subscriptions[0].filter.$or.0.body.x:"],
    ["            filter: [1]", "pyfly.callbacks.configs[0].subscriptions[0].filter: expected a filter"],
  ])("an invalid filter is refused naming its key path: %s", (extra, message) => {
    expect(errorsOf(subscription(extra)).join("\n")).toContain(message);
  });

  it("the proxy comes from http.proxy, else from the lower- or upper-case environment, never both schemes' defaults mixed", () => {
    const fromConfig = parseSettings(
      "pyfly: {callbacks: {http: {proxy: {url: 'http://proxy:3128', no-proxy: [internal.example, 10.0.0.0/8]}}}}",
      {
        HTTPS_PROXY: "http://other:1",
      },
    );
    expect(fromConfig.http.proxy).toEqual({
      http: "http://proxy:3128",
      https: "http://proxy:3128",
      noProxy: ["internal.example", "10.0.0.0/8"],
    });
    const fromEnv = parseSettings("", {
      https_proxy: "http://lower:1",
      HTTPS_PROXY: "http://upper:2",
      HTTP_PROXY: "http://plain:3",
      NO_PROXY: "a.example, .b.example",
    });
    expect(fromEnv.http.proxy).toEqual({ http: "http://plain:3", https: "http://lower:1", noProxy: ["a.example", ".b.example"] });
    expect(parseSettings("", {}).http.proxy).toEqual({ http: undefined, https: undefined, noProxy: [] });
  });

  it("a proxy URL that is not http:// is refused naming the key or the variable, and its credentials never appear", () => {
    expect(errorsOf("pyfly: {callbacks: {http: {proxy: {url: 'socks5://u:topsecret@proxy:1080'}}}}").join("\n")).toContain(
      "pyfly.callbacks.http.proxy.url: expected an http:// proxy (CONNECT), got scheme socks5:",
    );
    const fromEnv = errorsOf("", { HTTPS_PROXY: "https://u:topsecret@proxy:443" }).join("\n");
    expect(fromEnv).toContain("environment HTTPS_PROXY (or https_proxy): expected an http:// proxy");
    expect(fromEnv).not.toContain("topsecret");
  });

  describe("TLS files", () => {
    let ca: TestCa;
    let client: IssuedCertificate;
    let other: IssuedCertificate;
    beforeAll(() => {
      ca = createTestCa("config");
      client = ca.client("sidecar");
      other = ca.client("other");
    });
    afterAll(() => ca.remove());

    const tls = (global: string, own: string) => `
pyfly:
  callbacks:
    http:
      tls: { ${global} }
    configs:
      - tenant-id: acme
        name: n
        tls: { ${own} }
`;

    it("a config's tls keys override http.tls key by key", () => {
      const [config] = parseSettings(
        tls(`ca-file: ${ca.caFile}, min-version: TLSv1.3`, `client-cert-file: ${client.certFile}, client-key-file: ${client.keyFile}`),
        {},
      ).configs;
      expect(config?.tls).toEqual({
        client_cert_file: client.certFile,
        client_key_file: client.keyFile,
        ca_file: ca.caFile,
        min_version: "TLSv1.3",
      });
    });

    it.each([
      [
        () => tls("", `client-cert-file: /nonexistent/tls.crt, client-key-file: ${client.keyFile}`),
        "pyfly.callbacks.configs[0].tls.client-cert-file: cannot read /nonexistent/tls.crt: ENOENT",
      ],
      [() => tls(`ca-file: /nonexistent/ca.crt`, ""), "pyfly.callbacks.http.tls.ca-file: cannot read /nonexistent/ca.crt: ENOENT"],
      [
        () => tls("", `client-cert-file: ${client.certFile}`),
        "pyfly.callbacks.configs[0].tls.client-cert-file: client-cert-file needs client-key-file",
      ],
      [
        () => tls("", `client-cert-file: ${client.certFile}, client-key-file: ${other.keyFile}`),
        "pyfly.callbacks.configs[0].tls.client-key-file: the client certificate and key do not form a pair",
      ],
      [() => tls(`ca-file: ${client.keyFile}`, ""), "pyfly.callbacks.http.tls.ca-file: not a PEM certificate bundle"],
      [() => tls("min-version: TLSv1.1", ""), "pyfly.callbacks.http.tls.min-version: expected one of TLSv1.2, TLSv1.3"],
    ])("a missing, unpaired or unreadable file is refused at load naming the key (%#)", (yaml, message) => {
      expect(errorsOf(yaml()).join("\n")).toContain(message);
    });
  });
});
