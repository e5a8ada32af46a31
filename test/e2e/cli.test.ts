import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, runCli, type CliOptions, type CliResult } from "../support/cli.js";
import { startReceiver, type Receiver } from "../support/receiver.js";

const PYFLY_SECRET = "pyfly-e2e-secret-7f3a9c";
// Standard Webhooks secrets are base64; this one is distinctive enough to grep for.
const WH_SECRET = "whsec_c2lkZWNhci1lMmUtd2ViaG9vay1zZWNyZXQ=";
const SECRETS = [PYFLY_SECRET, WH_SECRET, WH_SECRET.slice("whsec_".length)];

let dir: string;
const results: CliResult[] = [];
const receivers: Receiver[] = [];

/** Every run is kept so the last test can check that no secret ever reached stdout or stderr. */
async function cli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const result = await runCli(args, { cwd: dir, ...options });
  results.push(result);
  return result;
}

function configFile(name: string, yaml: string): string {
  const path = join(dir, name);
  writeFileSync(path, yaml);
  return path;
}

const validConfig = (targetUrl = "https://hooks.example.com/in") => `pyfly:
  callbacks:
    log-level: info
    http:
      timeout: 2s
      allow-private-networks: true
    kafka:
      topics: [orders, payments]
    configs:
      - tenant-id: acme
        name: main
        secret: ${PYFLY_SECRET}
        backoff-ms: 10
        max-attempts: 2
        subscriptions:
          - event-type: OrderPlaced
            target-url: ${targetUrl}
          - event-type: "*"
            target-url: ${targetUrl}/all
      - tenant-id: globex
        name: webhooks
        enabled: false
        signing-scheme: standard-webhooks
        secret: ${WH_SECRET}
        subscriptions:
          - event-type: "*"
            target-url: https://globex.example.com/hook
`;

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), "cli-e2e-"));
});

afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("usage", () => {
  it("--help lists every command and exits 0; no command exits 2", async () => {
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    for (const command of ["run", "send", "sign", "verify", "check-config", "replay"]) expect(help.stdout).toContain(command);
    const none = await cli([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("Usage: callback-sidecar");
    const unknown = await cli(["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
  });

  it("an unknown option is a usage error (exit 2)", async () => {
    const result = await cli(["check-config", "--confg", "x.yml"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--confg");
  });
});

describe("check-config", () => {
  it("prints a summary of a valid file given with --config", async () => {
    const path = configFile("valid.yml", validConfig());
    const result = await cli(["check-config", "--config", path]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`configuration OK: ${path}`);
    expect(result.stdout).toMatch(/tenants:\s+2/);
    expect(result.stdout).toMatch(/configs:\s+2 \(1 disabled\)/);
    expect(result.stdout).toMatch(/subscriptions:\s+3/);
    expect(result.stdout).toMatch(/topics:\s+orders, payments/);
  });

  it("reads the file named by PYFLY_CONFIG_FILE, and ./application.yml by default", async () => {
    const path = configFile("from-env.yml", validConfig());
    const viaEnv = await cli(["check-config"], { env: { PYFLY_CONFIG_FILE: path } });
    expect(viaEnv.code).toBe(0);
    expect(viaEnv.stdout).toContain(`configuration OK: ${path}`);

    const cwd = mkdtempSync(join(dir, "cwd-"));
    writeFileSync(join(cwd, "application.yml"), "pyfly:\n  callbacks:\n    http:\n      timeout: -1\n");
    const viaDefault = await cli(["check-config"], { cwd });
    expect(viaDefault.code).toBe(78);
    expect(viaDefault.stderr).toContain("pyfly.callbacks.http.timeout");
  });

  it("exits 78 naming the key path of each problem, never a secret", async () => {
    const path = configFile(
      "broken.yml",
      validConfig().replace("timeout: 2s", "timeout: soon").replace("backoff-ms: 10", "backoff-ms: 10\n        colour: blue"),
    );
    const result = await cli(["check-config", "--config", path]);
    expect(result.code).toBe(78);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("pyfly.callbacks.http.timeout");
    expect(result.stderr).toContain("pyfly.callbacks.configs[0]");
    expect(result.stderr).toMatch(/colour/);
  });

  it("exits 78 for a missing file and for an environment override that does not validate", async () => {
    const missing = await cli(["check-config", "--config", join(dir, "nope.yml")]);
    expect(missing.code).toBe(78);
    expect(missing.stderr).toContain("does not exist");
    const path = configFile("env-override.yml", validConfig());
    const badEnv = await cli(["check-config", "--config", path], { env: { PYFLY_CALLBACKS_HTTP_TIMEOUT: "later" } });
    expect(badEnv.code).toBe(78);
    expect(badEnv.stderr).toContain("pyfly.callbacks.http.timeout");
  });
});

describe("sign and verify", () => {
  it("pyfly: signs the canonical body, and verify accepts it (with or without sha256=)", async () => {
    const signed = await cli(["sign", "--secret", PYFLY_SECRET], { stdin: '{"b": 1.0, "a": "é", "n": 12345678901234567890}\n' });
    expect(signed.code).toBe(0);
    const { body, headers } = JSON.parse(signed.stdout) as { body: string; headers: Record<string, string> };
    expect(body).toBe('{"a":"\\u00e9","b":1.0,"n":12345678901234567890}');
    const expected = createHmac("sha256", PYFLY_SECRET).update(body).digest("hex");
    expect(headers).toEqual({ "Content-Type": "application/json", "X-Pyfly-Signature": `sha256=${expected}` });

    for (const signature of [headers["X-Pyfly-Signature"]!, expected]) {
      const verified = await cli(["verify", "--secret", PYFLY_SECRET, "--signature", signature], { stdin: body });
      expect(verified.code).toBe(0);
      expect(verified.stdout.trim()).toBe("valid");
    }
    const tampered = await cli(["verify", "--secret", PYFLY_SECRET, "--signature", expected], { stdin: body.replace("1.0", "2.0") });
    expect(tampered.code).toBe(1);
    expect(tampered.stdout.trim()).toBe("invalid");
    const withNewline = await cli(["verify", "--secret", PYFLY_SECRET, "--signature", expected], { stdin: `${body}\n` });
    expect(withNewline.code).toBe(1);
    expect(withNewline.stderr).toContain("newline");
  });

  it("standard-webhooks: sign then verify with the same id and timestamp; tampering fails", async () => {
    const ts = String(Math.floor(Date.now() / 1000));
    const env = { WH: WH_SECRET };
    const signed = await cli(["sign", "--secret-env", "WH", "--scheme", "standard-webhooks", "--id", "msg_e2e", "--timestamp", ts], {
      env,
      stdin: '{"z":[1,2],"a":null}',
    });
    expect(signed.code).toBe(0);
    const { body, headers } = JSON.parse(signed.stdout) as { body: string; headers: Record<string, string> };
    expect(body).toBe('{"a":null,"z":[1,2]}');
    expect(headers).toMatchObject({ "Content-Type": "application/json", "webhook-id": "msg_e2e", "webhook-timestamp": ts });
    expect(headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);

    const verifyArgs = (id: string) => [
      "verify",
      "--secret-env",
      "WH",
      "--scheme",
      "standard-webhooks",
      "--id",
      id,
      "--timestamp",
      ts,
      "--signature",
      headers["webhook-signature"]!,
    ];
    const ok = await cli(verifyArgs("msg_e2e"), { env, stdin: body });
    expect(ok.code).toBe(0);
    expect(ok.stdout.trim()).toBe("valid");
    const tamperedBody = await cli(verifyArgs("msg_e2e"), { env, stdin: body.replace("null", "true") });
    expect(tamperedBody.code).toBe(1);
    const otherId = await cli(verifyArgs("msg_other"), { env, stdin: body });
    expect(otherId.code).toBe(1);
  });

  it("standard-webhooks verify needs --id and --timestamp (exit 2) and rejects an old timestamp (exit 1)", async () => {
    const missing = await cli(["verify", "--secret", WH_SECRET, "--scheme", "standard-webhooks", "--signature", "v1,AAAA"], {
      stdin: "{}",
    });
    expect(missing.code).toBe(2);
    const signed = await cli(["sign", "--secret", WH_SECRET, "--scheme", "standard-webhooks", "--id", "m", "--timestamp", "1000"], {
      stdin: "{}",
    });
    const { headers } = JSON.parse(signed.stdout) as { headers: Record<string, string> };
    const old = await cli(
      [
        "verify",
        "--secret",
        WH_SECRET,
        "--scheme",
        "standard-webhooks",
        "--id",
        "m",
        "--timestamp",
        "1000",
        "--signature",
        headers["webhook-signature"]!,
      ],
      { stdin: "{}" },
    );
    expect(old.code).toBe(1);
    expect(old.stderr).toContain("timestamp-too-old");
  });

  it("invalid JSON on stdin exits 2 with the offset; bad options exit 2", async () => {
    const invalid = await cli(["sign", "--secret", PYFLY_SECRET], { stdin: '{"a": tru}' });
    expect(invalid.code).toBe(2);
    expect(invalid.stdout).toBe("");
    expect(invalid.stderr).toMatch(/not valid JSON: .* at offset 6/);
    expect((await cli(["sign"], { stdin: "{}" })).code).toBe(2);
    expect((await cli(["sign", "--secret", "x", "--scheme", "hmac"], { stdin: "{}" })).code).toBe(2);
    expect((await cli(["sign", "--secret", "not base64!", "--scheme", "standard-webhooks"], { stdin: "{}" })).code).toBe(2);
    expect((await cli(["verify", "--secret", PYFLY_SECRET], { stdin: "{}" })).code).toBe(2);
  });
});

describe("send", () => {
  it("delivers to a real receiver, prints the executions as JSON, and the receiver gets the signed body", async () => {
    const receiver = await startReceiver();
    receivers.push(receiver);
    const path = configFile("send.yml", validConfig(`${receiver.url}/hook`));
    const result = await cli(["send", "--config", path, "acme", "OrderPlaced", '{"order": 42, "total": 9.5}']);
    expect(result.code).toBe(0);
    const executions = JSON.parse(result.stdout) as Record<string, unknown>[];
    expect(executions).toHaveLength(2);
    for (const e of executions) {
      expect(e).toMatchObject({ status: "DELIVERED", tenant_id: "acme", event_type: "OrderPlaced", attempts: 1, response_status: 200 });
    }
    // Redacted like everywhere else (capability URLs); the receiver saw both full paths.
    expect(executions.map((e) => e.target_url)).toEqual([`${receiver.url}/…`, `${receiver.url}/…`]);
    expect(result.stdout).not.toContain("/hook");
    expect(receiver.requests.map((r) => r.url).sort()).toEqual(["/hook", "/hook/all"]);

    expect(receiver.requests).toHaveLength(2);
    for (const request of receiver.requests) {
      const body = request.body.toString("utf8");
      expect(body).toBe('{"order":42,"total":9.5}');
      const signature = createHmac("sha256", PYFLY_SECRET).update(request.body).digest("hex");
      expect(request.headers["x-pyfly-signature"]).toBe(`sha256=${signature}`);
      expect(request.headers["x-pyfly-tenant-id"]).toBe("acme");
    }
  });

  it("exits 1 when a delivery fails, and 0 with [] when nothing matches", async () => {
    const receiver = await startReceiver({ kind: "respond", status: 400 });
    receivers.push(receiver);
    const path = configFile("send-fail.yml", validConfig(receiver.url));
    const failed = await cli(["send", "acme", "OrderPlaced", "{}"], { env: { PYFLY_CONFIG_FILE: path } });
    expect(failed.code).toBe(1);
    const executions = JSON.parse(failed.stdout) as Record<string, unknown>[];
    expect(executions.map((e) => e.status)).toEqual(["FAILED", "FAILED"]);
    expect(executions[0]).toMatchObject({ last_error: "HTTP 400", response_status: 400 });

    const none = await cli(["send", "--config", path, "initech", "OrderPlaced", "{}"]);
    expect(none.code).toBe(0);
    expect(JSON.parse(none.stdout)).toEqual([]);
    expect(none.stderr).toContain('no config for tenant "initech"');
    // globex's only config is disabled: no delivery, not an error.
    const disabled = await cli(["send", "--config", path, "globex", "Anything", "{}"]);
    expect(disabled.code).toBe(0);
    expect(JSON.parse(disabled.stdout)).toEqual([]);
    expect(disabled.stderr).toContain("no enabled subscription");
  });

  it("reads the payload from stdin with '-'; bad JSON exits 2, a bad config 78, wrong arity 2", async () => {
    const receiver = await startReceiver();
    receivers.push(receiver);
    const path = configFile("send-stdin.yml", validConfig(receiver.url));
    const fromStdin = await cli(["send", "--config", path, "acme", "Shipped", "-"], { stdin: '{"id":"s-1"}' });
    expect(fromStdin.code).toBe(0);
    expect(receiver.requests.map((r) => r.body.toString())).toEqual(['{"id":"s-1"}']);

    const badJson = await cli(["send", "--config", path, "acme", "Shipped", "{nope"]);
    expect(badJson.code).toBe(2);
    expect(badJson.stderr).toContain("offset 1");
    const broken = configFile("send-broken.yml", validConfig(receiver.url).replace("timeout: 2s", "timeout: forever"));
    const badConfig = await cli(["send", "--config", broken, "acme", "Shipped", "{}"]);
    expect(badConfig.code).toBe(78);
    expect(badConfig.stderr).toContain("pyfly.callbacks.http.timeout");
    expect((await cli(["send", "--config", path, "acme", "Shipped"])).code).toBe(2);
    expect(receiver.requests).toHaveLength(1);
  });
});

describe("secrets", () => {
  it("no configured or given secret appeared on stdout or stderr of any run above", () => {
    expect(results.length).toBeGreaterThan(20);
    for (const { stdout, stderr } of results) {
      for (const secret of SECRETS) {
        expect(stdout).not.toContain(secret);
        expect(stderr).not.toContain(secret);
      }
    }
  });
});
