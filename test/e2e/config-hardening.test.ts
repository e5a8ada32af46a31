import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, runCli } from "../support/cli.js";

/*
 * Broken configurations are refused by `run` itself, before it consumes anything: exit 78 and a
 * message naming the key path. The broker address is a closed port, so a `run` that got past
 * validation would hang instead of exiting 78.
 */

const SECRET = "hardening-secret-value-7f3a";

const base = (callbacks: string) => `pyfly:
  callbacks:
    enabled: true
    kafka:
      brokers: [127.0.0.1:1]
      topics: [orders]
${callbacks}`;

const tenant = (extra: string) => `    configs:
      - tenant-id: acme
        name: main
        secret: ${SECRET}
        subscriptions:
          - event-type: "*"
            target-url: https://hooks.example.com/x
${extra}`;

const cases: [string, string, string][] = [
  ["wrong type", base("    http:\n      timeout: [5]"), "pyfly.callbacks.http.timeout: expected a number of seconds"],
  ["unknown key", base("    htp:\n      timeout: 5s"), 'pyfly.callbacks: Unrecognized key: "htp"'],
  ["unknown tenant key", base(tenant("        max-attempt: 3")), 'pyfly.callbacks.configs[0]: Unrecognized key: "max-attempt"'],
  ["negative duration", base("    shutdown-grace: -5s"), "pyfly.callbacks.shutdown-grace: expected a number of seconds"],
  ["negative count", base(tenant("        backoff-ms: -1")), "pyfly.callbacks.configs[0].backoff-ms: expected an integer >= 0"],
  [
    "bad URL",
    base(tenant("").replace("https://hooks.example.com/x", "hooks.example.com/x")),
    "pyfly.callbacks.configs[0].subscriptions[0].target-url: expected an absolute",
  ],
  [
    "URL with credentials",
    base(tenant("").replace("https://hooks", "https://user:pw@hooks")),
    "pyfly.callbacks.configs[0].subscriptions[0].target-url: credentials in the URL",
  ],
  [
    "duplicate tenant config",
    base(tenant("      - tenant-id: acme\n        name: main")),
    'pyfly.callbacks.configs[1].name: duplicate config "main" for tenant "acme"',
  ],
  [
    "scheme without secret",
    base("    configs:\n      - tenant-id: acme\n        name: sw\n        signing-scheme: standard-webhooks"),
    "pyfly.callbacks.configs[0].secret: signing-scheme standard-webhooks needs a secret",
  ],
  [
    "bad standard-webhooks secret",
    base(tenant("        signing-scheme: standard-webhooks")),
    "pyfly.callbacks.configs[0].secret: the secret must be",
  ],
  [
    "rotation with pyfly",
    base(tenant("        additional-secrets: [old]")),
    "pyfly.callbacks.configs[0].additional-secrets: secret rotation needs signing-scheme pyfly-timestamped or standard-webhooks",
  ],
  [
    "3-byte standard-webhooks key",
    base(tenant("        signing-scheme: standard-webhooks").replace(`secret: ${SECRET}`, "secret: whsec_AAAA")),
    "pyfly.callbacks.configs[0].secret: the key is shorter than 24 bytes",
  ],
  [
    "/executions without a token",
    base("    server:\n      executions:\n        enabled: true"),
    "pyfly.callbacks.server.executions.token: required when server.executions.enabled is true",
  ],
  ["retry topic missing", base("    retry:\n      topic: ''"), "pyfly.callbacks.retry.topic: must not be empty"],
  ["dead-letter topic missing", base("    dead-letter:\n      topic: ''"), "pyfly.callbacks.dead-letter.topic: must not be empty"],
  ["retry topic consumed", base("    retry:\n      topic: orders"), 'pyfly.callbacks.retry.topic: topic "orders" is also consumed'],
  [
    "same retry and dead-letter topic",
    base("    retry:\n      topic: t\n    dead-letter:\n      topic: t"),
    "pyfly.callbacks.dead-letter.topic: must differ from retry.topic",
  ],
  ["no topics", base("").replace("      topics: [orders]\n", ""), "pyfly.callbacks.kafka.topics: no topic to consume"],
  ["bad CIDR", base("    http:\n      allowed-cidrs: [10.0.0.0/33]"), "pyfly.callbacks.http.allowed-cidrs[0]: invalid CIDR"],
  [
    "bad ordering",
    base("    kafka:\n      ordering: strict").replace("    kafka:\n      brokers: [127.0.0.1:1]\n      topics: [orders]\n", ""),
    "pyfly.callbacks.kafka.ordering: expected one of none, key, partition",
  ],
  [
    "forbidden header",
    base(
      tenant("").replace(
        "target-url: https://hooks.example.com/x",
        "target-url: https://hooks.example.com/x\n            headers: { Host: evil }",
      ),
    ),
    "pyfly.callbacks.configs[0].subscriptions[0].headers.Host: is set by the HTTP client",
  ],
  [
    "signature header configured",
    base(
      tenant("").replace(
        "target-url: https://hooks.example.com/x",
        "target-url: https://hooks.example.com/x\n            headers: { x-pyfly-signature: forged }",
      ),
    ),
    "pyfly.callbacks.configs[0].subscriptions[0].headers.x-pyfly-signature: is set by callback-sidecar",
  ],
  ["invalid YAML", base("    http: [unclosed"), "invalid YAML"],
];

describe("broken configurations are refused before consuming (exit 78)", () => {
  const dir = mkdtempSync(join(tmpdir(), "cfg-hardening-"));
  beforeAll(() => ensureBuilt());

  it.each(cases)("%s", async (name, yaml, message) => {
    const file = join(dir, `${name.replace(/\W+/g, "-")}.yml`);
    writeFileSync(file, yaml);
    const result = await runCli(["run", "--config", file], { timeoutMs: 20_000 });
    expect(result.signal, "run should exit on its own").toBeNull();
    expect(result.code).toBe(78);
    expect(result.stderr).toContain(message);
    expect(result.stdout + result.stderr).not.toContain(SECRET);
  });

  it("Kubernetes service-link variables do not stop it: they are ignored with a warning", async () => {
    const file = join(dir, "links.yml");
    writeFileSync(file, base(tenant("")).replace("enabled: true", "enabled: false"));
    const env = { PYFLY_CALLBACKS_FOO_SERVICE_HOST: "10.0.0.1", PYFLY_CALLBACKS_FOO_PORT: "tcp://10.0.0.1:80" };
    const run = await runCli(["run", "--config", file], { env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("configuration: environment: ignored PYFLY_CALLBACKS_FOO_PORT, PYFLY_CALLBACKS_FOO_SERVICE_HOST");
    const check = await runCli(["check-config", "--config", file], { env });
    expect(check.code, check.stderr).toBe(0);
    expect(check.stderr).toContain("warning: environment: ignored PYFLY_CALLBACKS_FOO_PORT, PYFLY_CALLBACKS_FOO_SERVICE_HOST");
    const typo = await runCli(["run", "--config", file], { env: { ...env, PYFLY_CALLBACKS_HTTP_TIMOUT: "5s" } });
    expect(typo.code).toBe(78);
    expect(typo.stderr).toContain("environment PYFLY_CALLBACKS_HTTP_TIMOUT: does not name a pyfly.callbacks key");
  });

  it("an environment override is validated like the file", async () => {
    const file = join(dir, "ok.yml");
    writeFileSync(file, base(tenant("")));
    const result = await runCli(["run", "--config", file], { env: { PYFLY_CALLBACKS_CONFIGS_0_MAX_ATTEMPTS: "lots" } });
    expect(result.code).toBe(78);
    expect(result.stderr).toContain("pyfly.callbacks.configs[0].max-attempts: expected an integer >= 0");
  });
});
