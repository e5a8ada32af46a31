import { describe, expect, it } from "vitest";
import {
  decodeStandardWebhookSecret,
  isSignatureHeader,
  pyflySignature,
  SIGNATURE_HEADER_NAMES,
  signatureHeaders,
  signingSecretProblem,
  standardWebhookSignature,
  verifyPyflySignature,
  verifyStandardWebhook,
  timestampedSignature,
  verifyTimestamped,
} from "../../src/delivery/signing/index.js";
import { createHmac } from "node:crypto";
import type { SigningScheme } from "../../src/domain/models.js";

// Vectors computed with Python's hmac/hashlib and the standardwebhooks package.
describe("pyfly signature", () => {
  it("is sha256=<lower-case hex HMAC-SHA256> over the body bytes, secret as UTF-8", () => {
    expect(pyflySignature("s3cr3t", '{"a":1}')).toBe("sha256=d42927434049e0b8c73ce887062238cc1c6bb6644bfe66e66d8dd0f30b85679e");
    expect(pyflySignature("s3cr3t", Buffer.from('{"a":1}'))).toBe(pyflySignature("s3cr3t", '{"a":1}'));
    expect(pyflySignature("ключ", String.raw`{"a":"\u00e9"}`)).toBe(
      "sha256=1963a1d94dbd8153111e7c40519e33876da418374be31b158c3315f249372bce",
    );
  });

  it("verifies like pyfly's HmacSignatureValidator: prefix optional, exact hex", () => {
    const sig = pyflySignature("s3cr3t", '{"a":1}');
    expect(verifyPyflySignature("s3cr3t", '{"a":1}', sig)).toBe(true);
    expect(verifyPyflySignature("s3cr3t", '{"a":1}', sig.slice("sha256=".length))).toBe(true);
    expect(verifyPyflySignature("s3cr3t", '{"a":1}', sig.toUpperCase().replace("SHA256=", "sha256="))).toBe(false);
    expect(verifyPyflySignature("s3cr3t", '{"a": 1}', sig)).toBe(false);
    expect(verifyPyflySignature("other", '{"a":1}', sig)).toBe(false);
    expect(verifyPyflySignature("s3cr3t", '{"a":1}', sig.slice(0, -1))).toBe(false);
    expect(verifyPyflySignature("s3cr3t", '{"a":1}', "")).toBe(false);
    expect(verifyPyflySignature("s3cr3t", '{"a":1}', undefined)).toBe(false);
    expect(verifyPyflySignature("s3cr3t", '{"a":1}', sig + "é")).toBe(false);
  });
});

describe("Standard Webhooks", () => {
  const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
  const timestamp = 1614265330;
  const body = '{"test": 2432232314}';
  const expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

  it("matches the reference vector, with or without the whsec_ prefix", () => {
    expect(standardWebhookSignature([secret], id, timestamp, body)).toBe(expected);
    expect(standardWebhookSignature([secret.slice(6)], id, timestamp, Buffer.from(body))).toBe(expected);
  });

  it("signs with every secret, space separated, primary first", () => {
    const other = "whsec_" + Buffer.from("rotated").toString("base64");
    const sig = standardWebhookSignature([secret, other], id, timestamp, body);
    expect(sig.split(" ")).toEqual([expected, standardWebhookSignature([other], id, timestamp, body)]);
  });

  it("accepts standard base64 secrets, padded or not, and refuses anything Python would mangle", () => {
    expect(decodeStandardWebhookSecret("whsec_YWJj")).toEqual(Buffer.from("abc"));
    expect(decodeStandardWebhookSecret("YWI=")).toEqual(Buffer.from("ab"));
    expect(decodeStandardWebhookSecret("YWI")).toEqual(Buffer.from("ab"));
    for (const bad of ["", "whsec_", "my-secret", "whsec_YW_j", "YWJj YWJj", "Y", "YWI=x", "YQ=", "whsec_YWJj=="]) {
      expect(signingSecretProblem("standard-webhooks", bad), bad).toBeDefined();
      expect(() => decodeStandardWebhookSecret(bad), bad).toThrow(/Invalid Standard Webhooks secret/);
    }
    expect(signingSecretProblem("pyfly", "my-secret")).toBeUndefined();
  });

  it("rejects a bad message id or timestamp when signing", () => {
    expect(() => standardWebhookSignature([secret], "", timestamp, body)).toThrow(/message id/);
    expect(() => standardWebhookSignature([secret], id, 1.5, body)).toThrow(/timestamp/);
    expect(() => standardWebhookSignature([], id, timestamp, body)).toThrow(/at least one secret/);
  });

  describe("verifyStandardWebhook", () => {
    const headers = { "Webhook-Id": id, "WEBHOOK-TIMESTAMP": String(timestamp), "webhook-signature": expected };
    const at = { now: timestamp + 10 };

    it("accepts a matching signature, headers in any case", () => {
      expect(verifyStandardWebhook(secret, headers, body, at)).toEqual({ ok: true });
      expect(verifyStandardWebhook(["whsec_" + Buffer.from("x").toString("base64"), secret], headers, body, at)).toEqual({ ok: true });
    });

    it("accepts when any rotated signature matches, skipping other versions and junk", () => {
      const h = { ...headers, "webhook-signature": `v1a,xyz garbage v1,${Buffer.alloc(32).toString("base64")} ${expected}` };
      expect(verifyStandardWebhook(secret, h, body, at)).toEqual({ ok: true });
    });

    it("rejects with a reason", () => {
      const no = (reason: string) => ({ ok: false, reason });
      expect(verifyStandardWebhook(secret, { ...headers, "webhook-signature": undefined }, body, at)).toEqual(no("missing-headers"));
      expect(verifyStandardWebhook(secret, { ...headers, "WEBHOOK-TIMESTAMP": "soon" }, body, at)).toEqual(no("invalid-timestamp"));
      expect(verifyStandardWebhook(secret, headers, body, { now: timestamp + 301 })).toEqual(no("timestamp-too-old"));
      expect(verifyStandardWebhook(secret, headers, body, { now: timestamp - 301 })).toEqual(no("timestamp-too-new"));
      expect(verifyStandardWebhook(secret, headers, body, { now: timestamp + 301, toleranceSeconds: 400 })).toEqual({ ok: true });
      expect(verifyStandardWebhook(secret, headers, body + " ", at)).toEqual(no("no-matching-signature"));
      expect(verifyStandardWebhook(secret, { ...headers, "Webhook-Id": "msg_other" }, body, at)).toEqual(no("no-matching-signature"));
      expect(verifyStandardWebhook("whsec_" + Buffer.from("x").toString("base64"), headers, body, at)).toEqual(no("no-matching-signature"));
    });
  });
});

describe("signatureHeaders", () => {
  const body = Buffer.from('{"a":1}');

  it("pyfly: X-Pyfly-Signature from the first secret only", () => {
    expect(signatureHeaders({ scheme: "pyfly", secrets: ["s3cr3t", "next"], body })).toEqual({
      "X-Pyfly-Signature": "sha256=d42927434049e0b8c73ce887062238cc1c6bb6644bfe66e66d8dd0f30b85679e",
    });
  });

  it("standard-webhooks: id, timestamp and one signature per secret", () => {
    const secrets = ["whsec_YWJj", "", "whsec_ZGVm"];
    const h = signatureHeaders({ scheme: "standard-webhooks", secrets, body, deliveryId: "d-1", timestamp: 1700000000 });
    expect(Object.keys(h)).toEqual(["webhook-id", "webhook-timestamp", "webhook-signature"]);
    expect(h["webhook-id"]).toBe("d-1");
    expect(h["webhook-timestamp"]).toBe("1700000000");
    expect(h["webhook-signature"]).toBe(standardWebhookSignature(["whsec_YWJj", "whsec_ZGVm"], "d-1", 1700000000, body));
    expect(verifyStandardWebhook("whsec_ZGVm", h, body, { now: 1700000000 })).toEqual({ ok: true });
    expect(() => signatureHeaders({ scheme: "standard-webhooks", secrets, body })).toThrow(/needs a timestamp/);
  });

  it("produces nothing without a secret", () => {
    const schemes: SigningScheme[] = ["pyfly", "standard-webhooks"];
    for (const scheme of schemes) {
      expect(signatureHeaders({ scheme, secrets: [], body, deliveryId: "d", timestamp: 1 })).toEqual({});
      expect(signatureHeaders({ scheme, secrets: [""], body, deliveryId: "d", timestamp: 1 })).toEqual({});
    }
  });

  it("names every signature header, matched case-insensitively", () => {
    expect(SIGNATURE_HEADER_NAMES).toEqual([
      "x-pyfly-signature",
      "x-hub-signature-256",
      "webhook-id",
      "webhook-timestamp",
      "webhook-signature",
    ]);
    expect(isSignatureHeader("X-PYFLY-Signature")).toBe(true);
    expect(isSignatureHeader("Webhook-Signature")).toBe(true);
    expect(isSignatureHeader("content-type")).toBe(false);
  });
});

describe("pyfly-timestamped", () => {
  const body = '{"a":1}';
  it("is t=<unix>,v1=<hex HMAC-SHA256(secret, t + '.' + body)> with one v1 per secret, primary first", () => {
    const value = timestampedSignature(["new", "old"], 1_700_000_000, body);
    const [t, v1a, v1b] = value.split(",");
    expect(t).toBe("t=1700000000");
    expect(v1a).toBe(`v1=${createHmac("sha256", "new").update(`1700000000.${body}`).digest("hex")}`);
    expect(v1b).toBe(`v1=${createHmac("sha256", "old").update(`1700000000.${body}`).digest("hex")}`);
  });

  it("verifies as StripeSignatureValidator does: any v1 with any secret, within the tolerance either way, any order of parts", () => {
    const value = timestampedSignature(["new"], 1_000, body);
    expect(verifyTimestamped(["x", "new"], value, body, { nowSeconds: 1_300 })).toEqual({ ok: true });
    expect(verifyTimestamped(["new"], value.split(",").reverse().join(","), body, { nowSeconds: 700 })).toEqual({ ok: true });
    expect(verifyTimestamped(["new"], value, body, { nowSeconds: 1_301 })).toEqual({
      ok: false,
      reason: "timestamp outside the tolerance of 300 s",
    });
    expect(verifyTimestamped(["new"], value, body, { nowSeconds: 699 }).ok).toBe(false);
    expect(verifyTimestamped(["new"], value, '{"a":2}', { nowSeconds: 1_000 })).toEqual({ ok: false, reason: "signature does not match" });
    expect(verifyTimestamped(["new"], value.replace("t=1000", "t=abc"), body, { nowSeconds: 1_000 }).ok).toBe(false);
  });
});
