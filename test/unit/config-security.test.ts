import { describe, expect, it } from "vitest";
import { ConfigErrors, type ConfigWarning } from "../../src/config/errors.js";
import { parseSettings } from "../../src/config/load.js";
import { isServiceLinkVariable } from "../../src/config/service-links.js";

function load(yaml: string, env: NodeJS.ProcessEnv = {}) {
  const warnings: ConfigWarning[] = [];
  const settings = parseSettings(yaml, env, "<inline>", warnings);
  return { settings, warnings: warnings.map((w) => w.message) };
}

function errorsOf(yaml: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseSettings(yaml, env);
  } catch (e) {
    if (e instanceof ConfigErrors) return e.errors.map((x) => x.message);
    throw e;
  }
  throw new Error("expected the configuration to be rejected");
}

const whsec = (bytes: number) => `whsec_${Buffer.alloc(bytes, 7).toString("base64")}`;
const tenant = (extra: string) => `pyfly: {callbacks: {configs: [{tenant-id: acme, name: n, ${extra}}]}}`;

describe("Kubernetes service-link variables", () => {
  // What the kubelet injects for a Service "pyfly-callbacks-callback-sidecar" with port 8080 "cb-admin"
  // (a Helm release named pyfly-callbacks), and for a Service named just "pyfly-callbacks".
  const links = {
    PYFLY_CALLBACKS_CALLBACK_SIDECAR_SERVICE_HOST: "10.96.12.34",
    PYFLY_CALLBACKS_CALLBACK_SIDECAR_SERVICE_PORT: "8080",
    PYFLY_CALLBACKS_CALLBACK_SIDECAR_SERVICE_PORT_CB_ADMIN: "8080",
    PYFLY_CALLBACKS_CALLBACK_SIDECAR_PORT: "tcp://10.96.12.34:8080",
    PYFLY_CALLBACKS_CALLBACK_SIDECAR_PORT_8080_TCP: "tcp://10.96.12.34:8080",
    PYFLY_CALLBACKS_CALLBACK_SIDECAR_PORT_8080_TCP_PROTO: "tcp",
    PYFLY_CALLBACKS_CALLBACK_SIDECAR_PORT_8080_TCP_PORT: "8080",
    PYFLY_CALLBACKS_CALLBACK_SIDECAR_PORT_8080_TCP_ADDR: "10.96.12.34",
    PYFLY_CALLBACKS_SERVICE_HOST: "fd00:10:96::1",
    PYFLY_CALLBACKS_PORT: "udp://[fd00:10:96::1]:53",
    PYFLY_CALLBACKS_PORT_53_UDP_ADDR: "fd00:10:96::1",
    PYFLY_CALLBACKS_PORT_9_SCTP_PROTO: "sctp",
  };

  it("the sidecar loads with FOO_SERVICE_HOST and FOO_PORT set, and says it ignored them", () => {
    const { settings, warnings } = load("", {
      PYFLY_CALLBACKS_FOO_SERVICE_HOST: "10.0.0.1",
      PYFLY_CALLBACKS_FOO_PORT: "tcp://10.0.0.1:80",
    });
    expect(settings.server.port).toBe(8080);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^environment: ignored PYFLY_CALLBACKS_FOO_PORT, PYFLY_CALLBACKS_FOO_SERVICE_HOST: Kubernetes service-link variables/,
    );
    expect(warnings[0]).not.toContain("10.0.0.1");
  });

  it("ignores every shape the kubelet produces, IPv6 and other protocols included", () => {
    for (const [name, value] of Object.entries(links)) expect(isServiceLinkVariable(name, value), name).toBe(true);
    const { warnings } = load("pyfly: {callbacks: {http: {timeout: 3s}}}", { ...links, PYFLY_CALLBACKS_HTTP_TIMEOUT: "4s" });
    expect(warnings).toHaveLength(1);
    for (const name of Object.keys(links)) expect(warnings[0]).toContain(name);
  });

  it("still applies real keys next to them", () => {
    const { settings } = load("", { ...links, PYFLY_CALLBACKS_HTTP_TIMEOUT: "4s", PYFLY_CALLBACKS_SERVER_PORT: "9464" });
    expect(settings.http.timeoutMs).toBe(4000);
    expect(settings.server.port).toBe(9464);
  });

  it("a Service named pyfly-callbacks-server does not break server.port (its _PORT value is a tcp:// URL)", () => {
    const { settings, warnings } = load("pyfly: {callbacks: {server: {port: 9000}}}", {
      PYFLY_CALLBACKS_SERVER_PORT: "tcp://10.0.0.9:80",
      PYFLY_CALLBACKS_SERVER_SERVICE_PORT: "80",
    });
    expect(settings.server.port).toBe(9000);
    expect(warnings[0]).toContain("PYFLY_CALLBACKS_SERVER_PORT");
  });

  it.each([
    ["PYFLY_CALLBACKS_HTTP_TIMOUT", "5s"],
    // Link-shaped names whose values are not what the kubelet writes: typos, reported.
    ["PYFLY_CALLBACKS_SERVR_PORT", "9090"],
    ["PYFLY_CALLBACKS_FOO_SERVICE_HOST", "kafka.example"],
    ["PYFLY_CALLBACKS_FOO_SERVICE_PORT", "http"],
    ["PYFLY_CALLBACKS_FOO_PORT", "tcp://kafka:80"],
    ["PYFLY_CALLBACKS_FOO_PORT", "http://10.0.0.1:80"],
    ["PYFLY_CALLBACKS_FOO_PORT_80_TCP_PROTO", "TCP"],
    ["PYFLY_CALLBACKS_FOO_PORT_80_HTTP", "tcp://10.0.0.1:80"],
    ["PYFLY_CALLBACKS_FOO_SERVICE_PORT", "70000"],
  ])("%s=%s still fails naming the variable", (name, value) => {
    expect(isServiceLinkVariable(name, value)).toBe(false);
    expect(errorsOf("", { [name]: value })).toEqual([`environment ${name}: does not name a pyfly.callbacks key`]);
  });

  it("a wrong value for a real key is still an error at that key", () => {
    expect(errorsOf("", { PYFLY_CALLBACKS_SERVER_PORT: "eighty" })).toEqual([expect.stringMatching(/^pyfly\.callbacks\.server\.port: /)]);
  });
});

describe("Standard Webhooks secrets decode to 24-64 bytes", () => {
  it.each([24, 32, 64])("%d bytes load", (n) => {
    expect(() =>
      load(tenant(`signing-scheme: standard-webhooks, secret: "${whsec(n)}", additional-secrets: ["${whsec(n)}"]`)),
    ).not.toThrow();
  });

  it("whsec_AAAA (3 bytes) is a config error naming the key, not the value", () => {
    const errors = errorsOf(tenant("signing-scheme: standard-webhooks, secret: whsec_AAAA"));
    expect(errors).toEqual([
      "pyfly.callbacks.configs[0].secret: the key is shorter than 24 bytes once base64-decoded; Standard Webhooks requires 24 to 64 random bytes",
    ]);
    expect(errors.join()).not.toContain("AAAA");
  });

  it("checks every additional secret at its own index, both bounds", () => {
    const errors = errorsOf(
      tenant(
        `signing-scheme: standard-webhooks, secret: "${whsec(32)}", additional-secrets: ["${whsec(32)}", "${whsec(23)}", "${whsec(65)}"]`,
      ),
    );
    expect(errors).toEqual([
      expect.stringMatching(/^pyfly\.callbacks\.configs\[0\]\.additional-secrets\[1\]: the key is shorter than 24 bytes/),
      expect.stringMatching(/^pyfly\.callbacks\.configs\[0\]\.additional-secrets\[2\]: the key is longer than 64 bytes/),
    ]);
  });

  it("a secret without the whsec_ prefix is measured the same way", () => {
    expect(errorsOf(tenant(`signing-scheme: standard-webhooks, secret: "${Buffer.alloc(8).toString("base64")}"`))).toHaveLength(1);
  });
});

describe("pyfly secrets shorter than 16 bytes", () => {
  it("load, with a warning naming the key path and never the value", () => {
    const { settings, warnings } = load(tenant("secret: short-sekrit"));
    expect(settings.configs[0]!.secret).toBe("short-sekrit");
    expect(warnings).toEqual([expect.stringMatching(/^pyfly\.callbacks\.configs\[0\]\.secret: shorter than 16 bytes/)]);
    expect(warnings.join()).not.toContain("short-sekrit");
  });

  it("16 bytes and more, or no secret, give no warning; bytes are counted in UTF-8", () => {
    expect(load(tenant("secret: 0123456789abcdef")).warnings).toEqual([]);
    expect(load(tenant("name2: x").replace(", name2: x", "")).warnings).toEqual([]);
    expect(load(tenant('secret: "ключ-ключ"')).warnings).toEqual([]); // 9 characters, 17 bytes
  });

  it("a placeholder is measured after expansion", () => {
    expect(load(tenant('secret: "${S}"'), { S: "abc" }).warnings).toHaveLength(1);
  });
});

describe("server.executions", () => {
  it("is off by default, payloads excluded", () => {
    expect(load("").settings.server.executions).toEqual({ enabled: false, token: undefined, includePayloads: false });
  });

  it("enabled without a token is a config error naming the key", () => {
    expect(errorsOf("pyfly: {callbacks: {server: {executions: {enabled: true}}}}")).toEqual([
      expect.stringMatching(/^pyfly\.callbacks\.server\.executions\.token: required when server\.executions\.enabled is true/),
    ]);
    expect(errorsOf('pyfly: {callbacks: {server: {executions: {enabled: true, token: "  "}}}}')).toHaveLength(1);
    expect(errorsOf('pyfly: {callbacks: {server: {executions: {enabled: true, token: "${T:}"}}}}')).toHaveLength(1);
  });

  it("takes the token from a placeholder or the environment, never echoing it", () => {
    const fromPlaceholder = load(
      'pyfly: {callbacks: {server: {executions: {enabled: true, token: "${ADMIN_TOKEN}", include-payloads: true}}}}',
      {
        ADMIN_TOKEN: "a-long-random-admin-token-value",
      },
    );
    expect(fromPlaceholder.settings.server.executions).toEqual({
      enabled: true,
      token: "a-long-random-admin-token-value",
      includePayloads: true,
    });
    const fromEnv = load("", { PYFLY_CALLBACKS_SERVER_EXECUTIONS_ENABLED: "true", PYFLY_CALLBACKS_SERVER_EXECUTIONS_TOKEN: "short" });
    expect(fromEnv.settings.server.executions.token).toBe("short");
    expect(fromEnv.warnings).toEqual([expect.stringMatching(/^pyfly\.callbacks\.server\.executions\.token: shorter than 16 bytes/)]);
    expect(fromEnv.warnings.join()).not.toContain("short:");
  });

  it("keeps executions.capacity where it was", () => {
    expect(load("", { PYFLY_CALLBACKS_EXECUTIONS_CAPACITY: "5" }).settings.executions.capacity).toBe(5);
  });
});

describe("warnings reach the operator", () => {
  it("check-config prints them on stderr, names only, and still exits 0", async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { checkConfigCommand } = await import("../../src/cli/check-config.js");
    const dir = mkdtempSync(join(tmpdir(), "check-config-"));
    const file = join(dir, "application.yml");
    writeFileSync(file, tenant("secret: tiny-secret"));
    const saved = { ...process.env };
    process.env.PYFLY_CALLBACKS_FOO_SERVICE_HOST = "10.0.0.1";
    const err: string[] = [];
    const out: string[] = [];
    const stderr = process.stderr.write.bind(process.stderr);
    const stdout = process.stdout.write.bind(process.stdout);
    process.stderr.write = ((chunk: string) => err.push(String(chunk)) > 0) as typeof process.stderr.write;
    process.stdout.write = ((chunk: string) => out.push(String(chunk)) > 0) as typeof process.stdout.write;
    try {
      expect(await checkConfigCommand(["--config", file])).toBe(0);
    } finally {
      process.stderr.write = stderr;
      process.stdout.write = stdout;
      process.env = saved;
      rmSync(dir, { recursive: true, force: true });
    }
    const text = err.join("");
    expect(text).toContain("warning: pyfly.callbacks.configs[0].secret: shorter than 16 bytes");
    expect(text).toContain("warning: environment: ignored PYFLY_CALLBACKS_FOO_SERVICE_HOST");
    expect(text).not.toContain("tiny-secret");
    expect(text).not.toContain("10.0.0.1");
    expect(out.join("")).toContain("configuration OK");
  });
});
