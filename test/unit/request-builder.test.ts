import { beforeEach, describe, expect, it, vi } from "vitest";
import { CallbackConfig, type CallbackSubscription } from "../../src/domain/models.js";
import { planDeliveries, type PlannedDelivery } from "../../src/domain/routing.js";
import { prepareEvent, type PreparedEvent } from "../../src/delivery/prepared-event.js";
import { RequestSigner } from "../../src/delivery/request-builder.js";
import { DELIVERY_ID_HEADER, EVENT_TYPE_HEADER, TENANT_ID_HEADER } from "../../src/domain/header-rules.js";
import * as signing from "../../src/delivery/signing/index.js";
import { pyflySignature, verifyPyflySignature, verifyStandardWebhook, verifyTimestamped } from "../../src/delivery/signing/index.js";
import { USER_AGENT } from "../../src/version.js";

// The signing module is the seam the signer owns: wrap its entry point to count how often it signs.
vi.mock("../../src/delivery/signing/index.js", async (importOriginal) => {
  const actual = await importOriginal<typeof import("../../src/delivery/signing/index.js")>();
  return { ...actual, signatureHeaders: vi.fn(actual.signatureHeaders) };
});
const signatureHeaders = vi.mocked(signing.signatureHeaders);

const SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SW_OLD_SECRET = "whsec_c2VjcmV0LW9sZC1rZXktZm9yLXRlc3Rz";
const T = 1_700_000_000;

function sub(target_url: string, headers: Record<string, string> = {}, event_type = "order.created"): CallbackSubscription {
  return { event_type, target_url, headers, rate_limit: null, format: "pyfly", filter: null };
}

function config(id: string, subscriptions: CallbackSubscription[], extra: Record<string, unknown> = {}): CallbackConfig {
  return CallbackConfig.parse({ id, tenant_id: "acme", name: id, subscriptions, secret: "s3cr3t", ...extra });
}

function event(json = '{"b":2,"a":"é"}', offset = "42"): PreparedEvent {
  return prepareEvent("acme", "order.created", json, { topic: "orders", partition: 0, offset });
}

function plan(configs: CallbackConfig[], e: PreparedEvent): PlannedDelivery[] {
  return planDeliveries(configs, e.eventType, e.source);
}

/** Header lookup by name, case-insensitively, asserting the name appears once. */
function header(headers: Record<string, string>, name: string): string | undefined {
  const found = Object.entries(headers).filter(([k]) => k.toLowerCase() === name.toLowerCase());
  expect(found.length, `header ${name} appears ${found.length} times`).toBeLessThanOrEqual(1);
  return found[0]?.[1];
}

beforeEach(() => {
  signatureHeaders.mockClear();
});

describe("RequestSigner.headersFor", () => {
  it("sets the identity headers, Content-Type and User-Agent", () => {
    const e = event();
    const [p] = plan([config("c", [sub("https://a.example/")], { secret: null })], e);
    const headers = new RequestSigner().headersFor(e, p!, T);
    expect(headers).toEqual({
      "Content-Type": "application/json",
      "User-Agent": USER_AGENT,
      [EVENT_TYPE_HEADER]: "order.created",
      [TENANT_ID_HEADER]: "acme",
      [DELIVERY_ID_HEADER]: p!.deliveryId,
    });
    expect(EVENT_TYPE_HEADER).toBe("X-Pyfly-Event-Type");
    expect(TENANT_ID_HEADER).toBe("X-Pyfly-Tenant-Id");
    expect(DELIVERY_ID_HEADER).toBe("X-Pyfly-Delivery-Id");
  });

  it("adds no signature without a secret (null or empty)", () => {
    const e = event();
    for (const secret of [null, ""]) {
      const [p] = plan([config("c", [sub("https://a.example/")], { secret })], e);
      const headers = new RequestSigner().headersFor(e, p!, T);
      expect(header(headers, "X-Pyfly-Signature")).toBeUndefined();
      expect(header(headers, "webhook-signature")).toBeUndefined();
    }
  });

  it("adds the subscription's own headers", () => {
    const e = event();
    const [p] = plan([config("c", [sub("https://a.example/", { Authorization: "Bearer t", "X-Custom": "1" })])], e);
    const headers = new RequestSigner().headersFor(e, p!, T);
    expect(headers.Authorization).toBe("Bearer t");
    expect(headers["X-Custom"]).toBe("1");
  });

  it("lets a subscription set Content-Type and User-Agent, in any case, without duplicating them", () => {
    const e = event();
    const [p] = plan(
      [config("c", [sub("https://a.example/", { "content-type": "application/cloudevents+json", "USER-AGENT": "acme-hooks/2" })])],
      e,
    );
    const headers = new RequestSigner().headersFor(e, p!, T);
    expect(header(headers, "Content-Type")).toBe("application/cloudevents+json");
    expect(header(headers, "User-Agent")).toBe("acme-hooks/2");
  });

  it("does not let a subscription override the identity headers, whatever their case", () => {
    const e = event();
    const forged = {
      "x-pyfly-event-type": "admin.granted",
      "X-PYFLY-TENANT-ID": "globex",
      "X-Pyfly-Delivery-Id": "forged-id",
    };
    const [p] = plan([config("c", [sub("https://a.example/", forged)])], e);
    const headers = new RequestSigner().headersFor(e, p!, T);
    expect(header(headers, EVENT_TYPE_HEADER)).toBe("order.created");
    expect(header(headers, TENANT_ID_HEADER)).toBe("acme");
    expect(header(headers, DELIVERY_ID_HEADER)).toBe(p!.deliveryId);
  });

  it("does not let a subscription override the pyfly signature, whatever its case", () => {
    const e = event();
    for (const name of ["X-Pyfly-Signature", "x-pyfly-signature", "X-PYFLY-SIGNATURE"]) {
      const [p] = plan([config("c", [sub("https://a.example/", { [name]: "sha256=forged" })])], e);
      const headers = new RequestSigner().headersFor(e, p!, T);
      expect(header(headers, "X-Pyfly-Signature")).toBe(pyflySignature("s3cr3t", e.body));
    }
  });

  it("does not let a subscription override the Standard Webhooks headers, whatever their case", () => {
    const e = event();
    const forged = { "Webhook-Id": "forged", "WEBHOOK-TIMESTAMP": "1", "webhook-signature": "v1,Zm9yZ2Vk" };
    const [p] = plan([config("c", [sub("https://a.example/", forged)], { secret: SW_SECRET, signing_scheme: "standard-webhooks" })], e);
    const headers = new RequestSigner().headersFor(e, p!, T);
    expect(header(headers, "webhook-id")).toBe(p!.deliveryId);
    expect(header(headers, "webhook-timestamp")).toBe(String(T));
    expect(verifyStandardWebhook(SW_SECRET, headers, e.body, { now: T })).toEqual({ ok: true });
  });

  describe("pyfly scheme", () => {
    it("signs the exact body with the config's secret", () => {
      const e = event();
      const [p] = plan([config("c", [sub("https://a.example/")])], e);
      const headers = new RequestSigner().headersFor(e, p!, T);
      expect(e.body).toBe('{"a":"\\u00e9","b":2}');
      expect(headers["X-Pyfly-Signature"]).toBe(pyflySignature("s3cr3t", e.body));
      expect(verifyPyflySignature("s3cr3t", e.body, headers["X-Pyfly-Signature"])).toBe(true);
      expect(header(headers, "webhook-signature")).toBeUndefined();
    });

    it("is computed once per config and event, reused across subscriptions and attempts", () => {
      const e = event();
      const c = config("c", [sub("https://a.example/"), sub("https://b.example/"), sub("https://c.example/", {}, "*")]);
      const planned = plan([c], e);
      expect(planned).toHaveLength(3);
      const signer = new RequestSigner();
      const signatures = new Set<string>();
      for (const p of planned) {
        for (const ts of [T, T + 60, T + 3600]) signatures.add(signer.headersFor(e, p, ts)["X-Pyfly-Signature"] as string);
      }
      expect(signatures).toEqual(new Set([pyflySignature("s3cr3t", e.body)]));
      expect(signatureHeaders).toHaveBeenCalledTimes(1);
    });

    it("is computed again for another config or another event", () => {
      const e1 = event('{"n":1}');
      const e2 = event('{"n":2}', "43");
      const c1 = config("c1", [sub("https://a.example/")]);
      const c2 = config("c2", [sub("https://a.example/")], { secret: "other" });
      const signer = new RequestSigner();
      const sig = (e: PreparedEvent, p: PlannedDelivery) => signer.headersFor(e, p, T)["X-Pyfly-Signature"];
      const [p1, p2] = plan([c1, c2], e1);
      expect(sig(e1, p1!)).toBe(pyflySignature("s3cr3t", e1.body));
      expect(sig(e1, p2!)).toBe(pyflySignature("other", e1.body));
      const [q1] = plan([c1], e2);
      expect(sig(e2, q1!)).toBe(pyflySignature("s3cr3t", e2.body));
      expect(signatureHeaders).toHaveBeenCalledTimes(3);
      // And each is then reused.
      sig(e1, p1!);
      sig(e1, p2!);
      sig(e2, q1!);
      expect(signatureHeaders).toHaveBeenCalledTimes(3);
    });

    it("signs two configs that share an id each with its own secret", () => {
      // Loading refuses duplicate ids; the signer must not depend on that to pick the right secret.
      const e = event();
      const first = config("same-id", [sub("https://a.example/")], { name: "a", secret: "secret-a" });
      const second = config("same-id", [sub("https://b.example/")], { name: "b", secret: "secret-b" });
      const [pa, pb] = plan([first, second], e);
      const signer = new RequestSigner();
      expect(signer.headersFor(e, pa!, T)["X-Pyfly-Signature"]).toBe(pyflySignature("secret-a", e.body));
      expect(signer.headersFor(e, pb!, T)["X-Pyfly-Signature"]).toBe(pyflySignature("secret-b", e.body));
    });

    it("does not share the cache between signers", () => {
      const e = event();
      const [p] = plan([config("c", [sub("https://a.example/")])], e);
      new RequestSigner().headersFor(e, p!, T);
      new RequestSigner().headersFor(e, p!, T);
      expect(signatureHeaders).toHaveBeenCalledTimes(2);
    });
  });

  describe("standard-webhooks scheme", () => {
    const swConfig = (extra: Record<string, unknown> = {}) =>
      config("sw", [sub("https://a.example/"), sub("https://b.example/")], {
        secret: SW_SECRET,
        signing_scheme: "standard-webhooks",
        ...extra,
      });

    it("sets webhook-id (the delivery id), webhook-timestamp and a verifiable signature", () => {
      const e = event();
      const [p] = plan([swConfig()], e);
      const headers = new RequestSigner().headersFor(e, p!, T);
      expect(headers["webhook-id"]).toBe(p!.deliveryId);
      expect(headers["webhook-timestamp"]).toBe(String(T));
      expect(headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
      expect(verifyStandardWebhook(SW_SECRET, headers, e.body, { now: T })).toEqual({ ok: true });
      expect(header(headers, "X-Pyfly-Signature")).toBeUndefined();
      expect(headers[DELIVERY_ID_HEADER]).toBe(p!.deliveryId);
    });

    it("is signed per delivery and per attempt, with the attempt's timestamp", () => {
      const e = event();
      const [pa, pb] = plan([swConfig()], e);
      const signer = new RequestSigner();
      const a1 = signer.headersFor(e, pa!, T);
      const a2 = signer.headersFor(e, pa!, T + 120);
      const b1 = signer.headersFor(e, pb!, T);
      expect(a2["webhook-timestamp"]).toBe(String(T + 120));
      expect(a2["webhook-id"]).toBe(a1["webhook-id"]);
      expect(a2["webhook-signature"]).not.toBe(a1["webhook-signature"]);
      expect(b1["webhook-id"]).toBe(pb!.deliveryId);
      expect(b1["webhook-signature"]).not.toBe(a1["webhook-signature"]);
      expect(verifyStandardWebhook(SW_SECRET, a2, e.body, { now: T + 120 })).toEqual({ ok: true });
      expect(verifyStandardWebhook(SW_SECRET, b1, e.body, { now: T })).toEqual({ ok: true });
      expect(signatureHeaders).toHaveBeenCalledTimes(3);
    });

    it("signs with every secret, primary first, for rotation", () => {
      const e = event();
      const [p] = plan([swConfig({ additional_secrets: [SW_OLD_SECRET] })], e);
      const headers = new RequestSigner().headersFor(e, p!, T);
      expect(headers["webhook-signature"]?.split(" ")).toHaveLength(2);
      expect(verifyStandardWebhook(SW_SECRET, headers, e.body, { now: T })).toEqual({ ok: true });
      expect(verifyStandardWebhook(SW_OLD_SECRET, headers, e.body, { now: T })).toEqual({ ok: true });
    });
  });

  describe("pyfly-timestamped and github schemes", () => {
    it("pyfly-timestamped: X-Pyfly-Signature t=<attempt time>,v1=<hex> per secret, signed per attempt, verifiable", () => {
      const e = event();
      const [p] = plan(
        [config("ts", [sub("https://a.example/")], { signing_scheme: "pyfly-timestamped", additional_secrets: ["old"] })],
        e,
      );
      const signer = new RequestSigner();
      const first = header(signer.headersFor(e, p!, T), "X-Pyfly-Signature")!;
      const later = header(signer.headersFor(e, p!, T + 60), "X-Pyfly-Signature")!;
      expect(first).toMatch(new RegExp(`^t=${T},v1=[0-9a-f]{64},v1=[0-9a-f]{64}$`));
      expect(later.startsWith(`t=${T + 60},`)).toBe(true);
      expect(verifyTimestamped(["s3cr3t"], first, e.body, { nowSeconds: T })).toEqual({ ok: true });
      expect(verifyTimestamped(["old"], later, e.body, { nowSeconds: T + 60 })).toEqual({ ok: true });
      expect(verifyTimestamped(["s3cr3t"], first, e.body, { nowSeconds: T + 301 }).ok).toBe(false);
      expect(signatureHeaders).toHaveBeenCalledTimes(2);
    });

    it("github: X-Hub-Signature-256 sha256=<hex of the body>, once per config and event; a configured header name wins", () => {
      const e = event();
      const gh = config("gh", [sub("https://a.example/"), sub("https://b.example/")], { signing_scheme: "github" });
      const stripe = config("st", [sub("https://c.example/")], {
        signing_scheme: "pyfly-timestamped",
        signature_header: "Stripe-Signature",
      });
      const signer = new RequestSigner();
      const [a, b] = plan([gh], e);
      const ha = signer.headersFor(e, a!, T);
      signer.headersFor(e, b!, T + 5);
      expect(header(ha, "X-Hub-Signature-256")).toBe(pyflySignature("s3cr3t", e.body));
      expect(header(ha, "X-Pyfly-Signature")).toBeUndefined();
      expect(signatureHeaders).toHaveBeenCalledTimes(1);
      const [c] = plan([stripe], e);
      const hc = signer.headersFor(e, c!, T);
      expect(header(hc, "Stripe-Signature")).toMatch(/^t=\d+,v1=/);
      expect(header(hc, "X-Pyfly-Signature")).toBeUndefined();
    });
  });
});
