/**
 * Byte-for-byte interop with real CPython: canonical JSON against json.dumps(json.loads(t), ...),
 * pyfly signatures against a receiver built from hmac/hashlib/json, Standard Webhooks headers
 * against the `standardwebhooks` PyPI package (venv in .cache/pyvenv, see test/support/python.ts).
 */
import { describe, expect, it } from "vitest";
import { canonicalizeJson } from "../../src/delivery/canonical-json.js";
import {
  pyflySignature,
  signatureHeaders,
  standardWebhookHeaders,
  verifyStandardWebhook,
  verifyTimestamped,
} from "../../src/delivery/signing/index.js";
import { ensurePythonVenv, runPython } from "../support/python.js";
import { prng } from "../support/prng.js";

const PY_CANONICAL = String.raw`
import json, sys
out = []
for t in json.load(sys.stdin):
    try:
        out.append({"ok": json.dumps(json.loads(t), separators=(",", ":"), sort_keys=True)})
    except (ValueError, RecursionError) as e:
        out.append({"err": type(e).__name__})
json.dump(out, sys.stdout)
`;

type PyResult = { ok: string } | { err: string };

function pythonCanonical(texts: string[]): PyResult[] {
  return JSON.parse(runPython(PY_CANONICAL, JSON.stringify(texts))) as PyResult[];
}

function ours(text: string | Uint8Array): PyResult {
  try {
    return { ok: canonicalizeJson(text) };
  } catch (e) {
    return { err: (e as Error).name };
  }
}

const FIXED: string[] = [
  '{"name":"Zoë","city":"Zürich","emoji":"😀","cjk":"日本語","rtl":"שלום"}',
  '"\\ud83d\\ude00 \\uD83D\\uDE00 \\ud83d \\ude00 \\ude00\\ud83d \\ud83d\\u0041"',
  '"\\u0000\\u0001\\u001f\\u007f\\u0080\\u00ff\\u2028\\u2029\\ufeff\\uffff"',
  '"\\" \\\\ \\/ \\b \\f \\n \\r \\t \x7f é"',
  '"tab\\there"',
  '"\\u0022\\u005C\\u002f\\u0041\\u007e\\u007F\\u0008\\u000C\\u000a\\u000D\\u0009"',
  "[0e0, 0E+00, -0.0e-0, 1e-0, 1.5e+300, 0.5e-323, 4.9406564584124654e-324, 2.4703282292062327e-324]",
  "[123456789012345678901234567890, -123456789012345678901234567890, 0, -0, 1, -1]",
  "[1.0, 1e-05, 1e16, 1e+16, 1E16, 1e15, 0.30000000000000004, 0.1, 0.2, -0.0, -0e0, 5e-324, 2e-324]",
  "[1.7976931348623157e308, 1.7976931348623159e308, 1e400, -1e400, 1e-400, 2.2250738585072014e-308]",
  "[1E5, 1.0e2, 10.50, 0.0001, 0.00001, 123.456, 1e21, 1e22, 9007199254740993, 9007199254740993.0]",
  "[0.1e1, 100e-2, 1.5e300, 1.5E-300, 12345678901234567890.5, 0.000001234, 4.35, 2.675]",
  '{"a":{"b":{"c":[{"d":[[[]]]}]}},"e":[],"f":{}}',
  '{"b":1,"a":2,"b":3,"a":{"x":1,"x":[1,2]}}',
  '{"\\ue000":1,"\\ud83d\\ude00":2,"\\uffff":3,"\\ud800":4,"\\udc00":5,"a":6,"":7,"\\u0000":8,"é":9,"\\ud83d":10}',
  '{"\uE000x":1,"😀":2,"\u{10000}":3,"\\udbff\\udfff":4,"\\ud7ff":5}',
  ' \t\n\r [ \t\n\r1 \t\n\r, \t\n\r{ \t\n\r"a" \t\n\r: \t\n\rnull \t\n\r} \t\n\r] \t\n\r',
  "[NaN, Infinity, -Infinity, true, false, null]",
  "[]",
  "{}",
  '""',
  "0",
  "-0",
  "-0.0",
  "true",
  "null",
  "1".repeat(4300),
  "-" + "9".repeat(4300),
  "1".repeat(4301) + ".5",
  "0." + "3".repeat(5000),
  "[" + "[".repeat(400) + "]".repeat(400) + "]",
  // Rejected by both.
  "",
  " ",
  "[1,]",
  '{"a":1,}',
  "{'a':1}",
  "[01]",
  "1.",
  ".5",
  "+1",
  "1e",
  "-",
  "--1",
  "-NaN",
  "nan",
  "[1 2]",
  '{"a" 1}',
  '{"a":1 "b":2}',
  '"abc',
  '"\\x"',
  '"\\u12"',
  '"\\u12G4"',
  '"a\nb"',
  '"\x1f"',
  "\ufeff[]",
  "[1]x",
  "tru",
  "True",
  "\x0b1",
  "\u00a01",
  "1".repeat(4301),
  "[]]",
  "{1:2}",
];

function generator(seed: number) {
  const rnd = prng(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const ws = () => (rnd() < 0.8 ? "" : Array.from({ length: int(3) + 1 }, () => pick([" ", "\t", "\n", "\r"])).join(""));
  const digits = (n: number) => Array.from({ length: n }, () => String(int(10))).join("");
  const hex4 = (u: number) => {
    const h = u.toString(16).padStart(4, "0");
    return rnd() < 0.5 ? h : h.toUpperCase();
  };
  const bits = new DataView(new ArrayBuffer(8));

  function number(): string {
    switch (int(7)) {
      case 0:
        return String(int(2000) - 1000);
      case 1:
        return (rnd() < 0.5 ? "-" : "") + String(1 + int(9)) + digits(int(40) + 15);
      case 2: {
        // Any finite double, written in a few of the ways a producer might write it.
        let x: number;
        do {
          bits.setUint32(0, int(2 ** 32));
          bits.setUint32(4, int(2 ** 32));
          x = bits.getFloat64(0);
        } while (!Number.isFinite(x));
        return pick([String(x), x.toExponential(), x.toPrecision(17), x.toExponential(int(21)).replace("e", "E")]);
      }
      case 3:
        return String(rnd() * 10 ** (int(40) - 20));
      case 4: {
        const mant = (rnd() < 0.3 ? "-" : "") + (rnd() < 0.3 ? "0" : String(1 + int(9)) + digits(int(20)));
        const frac = rnd() < 0.6 ? "." + digits(int(25) + 1) : "";
        const exp = rnd() < 0.6 ? pick(["e", "E"]) + pick(["", "+", "-"]) + String(int(340)) : "";
        return mant + frac + exp;
      }
      case 5:
        return pick(["0.1", "0.2", "0.3", "1e-7", "1e16", "1e15", "-0.0", "5e-324", "NaN", "Infinity", "-Infinity"]);
      default:
        return pick(["0", "-0", "1", "-1", "9007199254740993", "18446744073709551616"]);
    }
  }

  function stringBody(maxLen: number): string {
    let s = "";
    const n = int(maxLen);
    for (let i = 0; i < n; i++) {
      switch (int(10)) {
        case 0:
          s += pick(['\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"]);
          break;
        case 1:
          s += "\\u" + hex4(int(0x10000));
          break; // includes lone surrogate escapes
        case 2:
          s += "\\u" + hex4(0xd800 + int(0x400)) + "\\u" + hex4(0xdc00 + int(0x400));
          break;
        case 3:
          s += "\\u" + hex4(int(0x20));
          break;
        case 4: {
          let c: number;
          do c = 0x7f + int(0x10000 - 0x7f);
          while (c >= 0xd800 && c <= 0xdfff);
          s += String.fromCharCode(c);
          break;
        }
        case 5:
          s += String.fromCodePoint(0x10000 + int(0x100000));
          break;
        default: {
          const c = String.fromCharCode(0x20 + int(0x5f));
          s += c === '"' || c === "\\" ? "\\" + c : c;
        }
      }
    }
    return '"' + s + '"';
  }

  const KEYS = [
    '"a"',
    '"b"',
    '"A"',
    '""',
    '"é"',
    '"\uE000"',
    '"\uFFFF"',
    '"😀"',
    '"\u{10000}"',
    '"\\ud83d"',
    '"\\udc00"',
    '"\\ud83d\\ude00"',
    '"ab"',
    '"a\\u0000"',
    '"\\u00e9"',
    '"\\uD7FF"',
    '"\uFB01"',
  ];

  function value(depth: number): string {
    const r = int(depth >= 5 ? 6 : 9);
    switch (r) {
      case 0:
      case 1:
        return number();
      case 2:
      case 3:
        return stringBody(12);
      case 4:
        return pick(["true", "false", "null"]);
      case 5:
        return rnd() < 0.5 ? "[]" : "{}";
      case 6:
      case 7: {
        const n = int(6) + 1;
        const members = Array.from(
          { length: n },
          () => ws() + (rnd() < 0.6 ? pick(KEYS) : stringBody(6)) + ws() + ":" + ws() + value(depth + 1) + ws(),
        );
        return "{" + members.join(",") + "}";
      }
      default: {
        const n = int(6) + 1;
        return "[" + Array.from({ length: n }, () => ws() + value(depth + 1) + ws()).join(",") + "]";
      }
    }
  }
  return () => ws() + value(0) + ws();
}

describe("canonical JSON against CPython json.dumps(json.loads(t), separators=(',', ':'), sort_keys=True)", () => {
  it("matches on the fixed set, errors included", () => {
    const py = pythonCanonical(FIXED);
    FIXED.forEach((t, i) => {
      const mine = ours(t);
      const theirs = py[i]!;
      if ("ok" in theirs) expect(mine, `input ${JSON.stringify(t).slice(0, 200)}`).toEqual(theirs);
      else expect("err" in mine, `python rejects ${JSON.stringify(t).slice(0, 200)}: ${theirs.err}`).toBe(true);
    });
    // And the UTF-8 bytes overload agrees with the string one.
    for (const t of FIXED.slice(0, 20)) expect(ours(Buffer.from(t, "utf8"))).toEqual(ours(t));
  });

  it("matches on random documents (INTEROP_DOCS, default 300)", () => {
    const seed = Number(process.env.INTEROP_SEED ?? Date.now() % 2 ** 31);
    const gen = generator(seed);
    const docs = Array.from({ length: Number(process.env.INTEROP_DOCS ?? 300) }, gen);
    const py = pythonCanonical(docs);
    docs.forEach((t, i) => {
      expect(ours(t), `seed ${seed} (rerun with INTEROP_SEED=${seed}), document ${i}: ${t}`).toEqual(py[i]);
    });
  });

  it("writes 5000 random doubles exactly as repr(float)", () => {
    const seed = Number(process.env.INTEROP_SEED ?? 12345);
    const rnd = prng(seed);
    const view = new DataView(new ArrayBuffer(8));
    const tokens: string[] = [];
    while (tokens.length < 5000) {
      view.setUint32(0, Math.floor(rnd() * 2 ** 32));
      view.setUint32(4, Math.floor(rnd() * 2 ** 32));
      const x = view.getFloat64(0);
      if (!Number.isFinite(x)) continue;
      tokens.push(tokens.length % 2 ? x.toExponential() : x.toPrecision(17));
    }
    const doc = "[" + tokens.join(",") + "]";
    expect(ours(doc), `seed ${seed}`).toEqual(pythonCanonical([doc])[0]);
  });
});

describe("pyfly signature against a Python receiver (hmac, hashlib, json)", () => {
  // pyfly's HmacSignatureValidator, plus a check that the body is already canonical.
  const RECEIVER = String.raw`
import hashlib, hmac, json, sys
req = json.load(sys.stdin)
out = []
for case in req:
    body = bytes.fromhex(case["body_hex"])
    sig = case["signature"]
    if sig.startswith("sha256="):
        sig = sig[len("sha256="):]
    expected = hmac.new(case["secret"].encode("utf-8"), body, hashlib.sha256).hexdigest()
    canonical = json.dumps(json.loads(body), separators=(",", ":"), sort_keys=True).encode("utf-8")
    out.append({"valid": hmac.compare_digest(expected, sig), "canonical": canonical == body})
json.dump(out, sys.stdout)
`;

  it("verifies our signature over the exact body bytes", () => {
    const payloads = [
      '{"z":1,"a":"Zoë 😀","n":123456789012345678901234567890,"f":1e-05}',
      '{"event":"order.created","data":{"id":42,"items":[{"sku":"ABC","qty":2,"price":19.99}]}}',
      '["\\u0000", "\\ud83d", -0.0, 1e16]',
    ];
    const secrets = ["s3cr3t", "ключ-🔑", "whsec_notspecial"];
    const cases = payloads.flatMap((p, i) => {
      const body = Buffer.from(canonicalizeJson(p), "utf8");
      const secret = secrets[i % secrets.length]!;
      const headers = signatureHeaders({ scheme: "pyfly", secrets: [secret], body });
      return [
        { body_hex: body.toString("hex"), secret, signature: headers["X-Pyfly-Signature"]!, want: true },
        { body_hex: body.toString("hex"), secret, signature: pyflySignature(secret, body).slice(7), want: true },
        { body_hex: body.toString("hex"), secret: secret + "x", signature: pyflySignature(secret, body), want: false },
      ];
    });
    const got = JSON.parse(runPython(RECEIVER, JSON.stringify(cases))) as { valid: boolean; canonical: boolean }[];
    expect(got.map((g) => g.valid)).toEqual(cases.map((c) => c.want));
    expect(got.every((g) => g.canonical)).toBe(true);
  });
});

describe("pyfly-timestamped and github against pyfly.webhooks' Stripe and GitHub validators (their algorithm, in Python)", () => {
  // StripeSignatureValidator as ../shared/reference/pyfly-webhooks-signatures.md describes it:
  // split on "," then on the first "="; t an integer within the tolerance of now; any v1 matching;
  // payload t + "." + body decoded as UTF-8 with replacement; constant-time compare.
  // GitHubSignatureValidator: "sha256=" + hex HMAC of the raw body.
  const VALIDATORS = String.raw`
import hashlib, hmac, json, sys, time

def stripe_is_valid(secret, body, header, tolerance=300):
    timestamp, signatures = None, []
    for part in header.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or abs(time.time() - timestamp) > tolerance:
        return False
    payload = (str(timestamp) + "." + body.decode("utf-8", errors="replace")).encode("utf-8")
    expected = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)

def github_is_valid(secret, body, header):
    expected = "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)

out = []
for case in json.load(sys.stdin):
    body = bytes.fromhex(case["body_hex"])
    check = stripe_is_valid if case["scheme"] == "stripe" else github_is_valid
    out.append(check(case["secret"], body, case["header"]))
json.dump(out, sys.stdout)
`;

  const body = Buffer.from(canonicalizeJson('{"order":{"id":42,"total":19.99},"note":"Zoë 😀"}'), "utf8");
  const now = () => Math.floor(Date.now() / 1000);

  it("accepts the timestamped scheme with either rotated secret, rejects a body changed by one byte and a timestamp older than the tolerance", () => {
    const fresh = signatureHeaders({ scheme: "pyfly-timestamped", secrets: ["new-secret", "old-secret"], body, timestamp: now() });
    const stale = signatureHeaders({ scheme: "pyfly-timestamped", secrets: ["new-secret"], body, timestamp: now() - 301 });
    const header = fresh["X-Pyfly-Signature"]!;
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
    const changed = Buffer.from(body);
    changed.writeUInt8(changed.readUInt8(changed.length - 2) ^ 1, changed.length - 2);
    const cases = [
      { secret: "new-secret", body_hex: body.toString("hex"), header, want: true },
      { secret: "old-secret", body_hex: body.toString("hex"), header, want: true },
      { secret: "other", body_hex: body.toString("hex"), header, want: false },
      { secret: "new-secret", body_hex: changed.toString("hex"), header, want: false },
      { secret: "new-secret", body_hex: body.toString("hex"), header: stale["X-Pyfly-Signature"]!, want: false },
    ].map((c) => ({ ...c, scheme: "stripe" }));
    expect(JSON.parse(runPython(VALIDATORS, JSON.stringify(cases)))).toEqual(cases.map((c) => c.want));
    // And our own verifier, which the verify command uses, agrees case by case.
    expect(cases.map((c) => verifyTimestamped([c.secret], c.header, Buffer.from(c.body_hex, "hex")).ok)).toEqual(cases.map((c) => c.want));
  });

  it("accepts the github scheme's X-Hub-Signature-256 value and rejects another secret", () => {
    const header = signatureHeaders({ scheme: "github", secrets: ["gh-secret"], body })["X-Hub-Signature-256"]!;
    const cases = [
      { scheme: "github", secret: "gh-secret", body_hex: body.toString("hex"), header, want: true },
      { scheme: "github", secret: "other", body_hex: body.toString("hex"), header, want: false },
    ];
    expect(JSON.parse(runPython(VALIDATORS, JSON.stringify(cases)))).toEqual(cases.map((c) => c.want));
  });
});

describe("Standard Webhooks against the standardwebhooks PyPI package", () => {
  const VERIFIER = String.raw`
import json, sys
from standardwebhooks.webhooks import Webhook
out = []
for case in json.load(sys.stdin):
    try:
        Webhook(case["secret"]).verify(bytes.fromhex(case["body_hex"]), case["headers"])
        out.append("ok")
    except Exception as e:
        out.append(type(e).__name__ + ": " + str(e))
json.dump(out, sys.stdout)
`;
  const SIGNER = String.raw`
import json, sys
from datetime import datetime, timezone
from standardwebhooks.webhooks import Webhook
c = json.load(sys.stdin)
ts = datetime.fromtimestamp(c["timestamp"], tz=timezone.utc)
print(Webhook(c["secret"]).sign(c["id"], ts, bytes.fromhex(c["body_hex"]).decode()))
`;

  const primary = "whsec_" + Buffer.from("primary key material 0123456789").toString("base64");
  const rotated = "whsec_" + Buffer.from("the new key after rotation!").toString("base64");
  const unprefixedUnpadded = Buffer.from("unprefixed and unpadded").toString("base64").replace(/=+$/, "");
  const stranger = "whsec_" + Buffer.from("nobody signed with me").toString("base64");

  it("verifies our headers, with one or two rotated secrets, knowing only one of them", () => {
    const py = ensurePythonVenv();
    const body = Buffer.from(canonicalizeJson('{"b":[1.5,"Zoë 😀"],"a":123456789012345678901234567890}'), "utf8");
    const now = Math.floor(Date.now() / 1000);
    const sign = (secrets: string[], id = "msg_2Kxyz") =>
      signatureHeaders({ scheme: "standard-webhooks", secrets, body, deliveryId: id, timestamp: now });
    const both = sign([primary, rotated]);
    expect(both["webhook-signature"]!.split(" ")).toHaveLength(2);
    const cases = [
      { secret: primary, headers: both, want: "ok" },
      { secret: rotated, headers: both, want: "ok" },
      { secret: rotated, headers: sign([rotated]), want: "ok" },
      { secret: unprefixedUnpadded, headers: sign([unprefixedUnpadded]), want: "ok" },
      { secret: "whsec_" + unprefixedUnpadded, headers: sign([unprefixedUnpadded]), want: "ok" },
      { secret: stranger, headers: both, want: "WebhookVerificationError: No matching signature found" },
      {
        secret: primary,
        headers: standardWebhookHeaders([primary], "msg_old", now - 3600, body),
        want: "WebhookVerificationError: Message timestamp too old",
      },
    ].map((c) => ({ ...c, body_hex: body.toString("hex") }));
    const got = JSON.parse(runPython(VERIFIER, JSON.stringify(cases), py)) as string[];
    expect(got).toEqual(cases.map((c) => c.want));
  });

  it("and our verifier accepts what the Python package signs", () => {
    const py = ensurePythonVenv();
    const body = Buffer.from(canonicalizeJson('{"k":"v","n":[1,2,3]}'), "utf8");
    const timestamp = Math.floor(Date.now() / 1000);
    for (const secret of [primary, unprefixedUnpadded]) {
      const signature = runPython(SIGNER, JSON.stringify({ secret, id: "msg_1", timestamp, body_hex: body.toString("hex") }), py).trim();
      const headers = { "Webhook-Id": "msg_1", "Webhook-Timestamp": String(timestamp), "Webhook-Signature": signature };
      expect(verifyStandardWebhook([stranger, secret], headers, body)).toEqual({ ok: true });
      expect(verifyStandardWebhook(stranger, headers, body)).toEqual({ ok: false, reason: "no-matching-signature" });
    }
  });
});
