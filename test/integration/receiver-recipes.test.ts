/**
 * Every verification recipe in docs/receivers.md, run as written (CPython in the test venv, Node,
 * Go) against requests the sidecar's own signer makes: each accepts a genuine request, and rejects
 * a body changed by one byte and, where the scheme has a timestamp, one older than 5 minutes.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { canonicalizeJson } from "../../src/delivery/canonical-json.js";
import { formatRequest } from "../../src/delivery/cloudevent-format.js";
import { prepareEvent } from "../../src/delivery/prepared-event.js";
import { signatureHeaders } from "../../src/delivery/signing/index.js";
import type { SigningScheme } from "../../src/domain/models.js";
import { REPO_ROOT, ensurePythonVenv } from "../support/python.js";

interface Recipe {
  language: "python" | "js" | "go";
  schemes: string[];
  code: string;
}

const doc = readFileSync(join(REPO_ROOT, "docs/receivers.md"), "utf8");
const recipes: Recipe[] = [...doc.matchAll(/```(python|js|go) recipe=([\w,-]+)\n([\s\S]*?)```/g)].map((m) => ({
  language: m[1] as Recipe["language"],
  schemes: (m[2] as string).split(","),
  code: m[3] as string,
}));

const SECRET = "recipe-secret-ключ";
const SW_SECRET = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
const payload = canonicalizeJson('{"order":{"id":7,"amount":12345678901234567890,"note":"Zoë"}}');

/** A request as the sidecar signs it now (or `ageSeconds` ago), headers in lower case. */
function request(scheme: string, ageSeconds = 0, tamper = false) {
  const timestamp = Math.floor(Date.now() / 1000) - ageSeconds;
  let body = payload;
  let headers: Record<string, string> = {};
  let secret = SECRET;
  if (scheme === "cloudevents") {
    const event = prepareEvent("acme", "OrderPlaced", payload, { topic: "orders", partition: 0, offset: "7" }, Date.now(), "evt-7");
    const formatted = formatRequest("cloudevents-structured", event, "d-7");
    body = formatted.body;
    headers = { ...formatted.headers, ...signatureHeaders({ scheme: "pyfly", secrets: [secret], body }) };
  } else {
    if (scheme === "standard-webhooks") secret = SW_SECRET;
    headers = signatureHeaders({ scheme: scheme as SigningScheme, secrets: [secret], body, deliveryId: "d-7", timestamp });
  }
  const bytes = Buffer.from(body, "utf8");
  if (tamper) bytes.writeUInt8(bytes.readUInt8(bytes.length - 2) ^ 1, bytes.length - 2);
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return JSON.stringify({ secret, headers: lower, body_b64: bytes.toString("base64") });
}

/** Runs a recipe on one request; returns what it printed. */
function runner(recipe: Recipe): (stdin: string) => string {
  const dir = mkdtempSync(join(tmpdir(), "recipe-"));
  const run = (command: string, args: string[], stdin = "") => {
    const r = spawnSync(command, args, { input: stdin, encoding: "utf8", cwd: dir, env: { ...process.env, GOFLAGS: "-mod=mod" } });
    if (r.status !== 0) throw new Error(`${command} ${args.join(" ")} exited ${r.status}:\n${r.stderr}`);
    return r.stdout.trim();
  };
  switch (recipe.language) {
    case "python": {
      const python = ensurePythonVenv();
      return (stdin) => run(python, ["-c", recipe.code], stdin);
    }
    case "js":
      writeFileSync(join(dir, "recipe.cjs"), recipe.code);
      return (stdin) => run(process.execPath, ["recipe.cjs"], stdin);
    case "go":
      writeFileSync(join(dir, "main.go"), recipe.code);
      run("go", ["build", "-o", "recipe", "main.go"]);
      return (stdin) => run(join(dir, "recipe"), [], stdin);
  }
}

const TIMESTAMPED = new Set(["pyfly-timestamped", "standard-webhooks"]);

describe("docs/receivers.md recipes", () => {
  it("has a recipe for every scheme in Python, Node and Go (CloudEvents in Python)", () => {
    const have = new Set(recipes.flatMap((r) => r.schemes.map((s) => `${r.language}:${s}`)));
    for (const language of ["python", "js", "go"])
      for (const scheme of ["pyfly", "github", "pyfly-timestamped"]) expect(have).toContain(`${language}:${scheme}`);
    expect(have).toContain("python:standard-webhooks");
    expect(have).toContain("js:standard-webhooks");
    expect(have).toContain("python:cloudevents");
  });

  it.each(recipes.flatMap((r) => r.schemes.map((scheme) => [`${r.language} ${scheme}`, r, scheme] as const)))(
    "%s: accepts a genuine request, rejects a changed body (and a stale timestamp)",
    (_, recipe, scheme) => {
      const verify = runner(recipe);
      expect(verify(request(scheme))).toBe("valid");
      expect(verify(request(scheme, 0, true))).toBe("invalid");
      if (TIMESTAMPED.has(scheme)) expect(verify(request(scheme, 301))).toBe("invalid");
    },
    120_000,
  );
});
