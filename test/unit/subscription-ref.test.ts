import { describe, expect, it } from "vitest";
import { FINGERPRINT_HEX_LENGTH, redactUrl, subscriptionFingerprint } from "../../src/domain/subscription-ref.js";

describe("redactUrl", () => {
  it.each([
    ["https://hooks.example.com/services/T0K3N/abc", "https://hooks.example.com/…"],
    ["https://hooks.example.com/?token=s3cret", "https://hooks.example.com/…"],
    ["https://hooks.example.com?token=s3cret", "https://hooks.example.com/…"],
    ["https://hooks.example.com/#frag", "https://hooks.example.com/…"],
    ["http://127.0.0.1:8080/hooks/T0K3N-x?token=y", "http://127.0.0.1:8080/…"],
    ["http://[::1]:9000/h", "http://[::1]:9000/…"],
    ["https://hooks.example.com:443/a", "https://hooks.example.com/…"],
    ["https://hooks.example.com/", "https://hooks.example.com/"],
    ["https://hooks.example.com", "https://hooks.example.com/"],
    ["HTTPS://Hooks.Example.COM/X", "https://hooks.example.com/…"],
  ])("%s -> %s", (url, redacted) => {
    expect(redactUrl(url)).toBe(redacted);
  });

  it("drops user info", () => {
    expect(redactUrl("https://user:pa55word@hooks.example.com/")).toBe("https://hooks.example.com/");
  });

  it("echoes nothing of a string it cannot read as a URL with a host", () => {
    for (const bad of ["not a url T0K3N", "", "mailto:T0K3N@example.com", "data:text/plain,T0K3N", "file:///T0K3N"]) {
      const out = redactUrl(bad);
      expect(out).not.toContain("T0K3N");
      expect(out).toBe("(unreadable URL)");
    }
  });

  it("never lets a random path or query token through", () => {
    const token = "Qm9vbGVhbi1zZWNyZXQtdG9rZW4";
    for (const url of [
      `https://a.example/${token}`,
      `https://a.example/x?${token}`,
      `https://a.example/x?k=${token}`,
      `https://a.example/#${token}`,
      `https://a.example/%2F${token}`,
    ]) {
      expect(redactUrl(url)).not.toContain(token);
    }
  });
});

describe("subscriptionFingerprint", () => {
  const base = {
    event_type: "order.created",
    target_url: "https://hooks.example.com/a?t=1",
    headers: { "X-Api-Version": "2", Authorization: "Bearer x" },
  };

  it("is 16 lower-case hex digits and stable", () => {
    const fp = subscriptionFingerprint(base);
    expect(fp).toMatch(/^[0-9a-f]{16}$/);
    expect(FINGERPRINT_HEX_LENGTH).toBe(16);
    expect(subscriptionFingerprint({ ...base })).toBe(fp);
    // Pinned: the value must not change between releases, or pending records lose their subscription.
    expect(fp).toBe("f05358e6ba285148");
  });

  it("ignores header order and header-name case (HTTP compares names case-insensitively)", () => {
    const reordered = { ...base, headers: { authorization: "Bearer x", "x-api-version": "2" } };
    expect(subscriptionFingerprint(reordered)).toBe(subscriptionFingerprint(base));
    expect(subscriptionFingerprint({ ...base, headers: {} })).toBe(
      subscriptionFingerprint({ event_type: base.event_type, target_url: base.target_url, headers: {} }),
    );
  });

  it("changes with the event type, any part of the URL, or any header", () => {
    const fp = subscriptionFingerprint(base);
    const variants = [
      { ...base, event_type: "order.updated" },
      { ...base, target_url: "https://hooks.example.com/a?t=2" },
      { ...base, target_url: "https://hooks.example.com/b?t=1" },
      { ...base, target_url: "http://hooks.example.com/a?t=1" },
      { ...base, headers: { ...base.headers, Authorization: "Bearer y" } },
      { ...base, headers: { "X-Api-Version": "2" } },
      { ...base, headers: { ...base.headers, "X-Extra": "" } },
    ];
    const fps = variants.map(subscriptionFingerprint);
    expect(fps).not.toContain(fp);
    expect(new Set(fps).size).toBe(variants.length);
  });

  it("cannot be fooled by moving text between fields", () => {
    const a = subscriptionFingerprint({ event_type: "a", target_url: "https://x.example/\u0000b", headers: {} });
    const b = subscriptionFingerprint({ event_type: "a\u0000https://x.example/", target_url: "b", headers: {} });
    expect(a).not.toBe(b);
  });

  it("does not contain the URL or a header value", () => {
    const fp = subscriptionFingerprint(base);
    expect(fp).not.toContain("hooks");
    expect(fp.length).toBe(16);
  });
});
