import { describe, expect, it } from "vitest";
import { isDomainAuthorized } from "../../src/delivery/ssrf/domain-allowlist.js";

const list = (...domains: string[]) => domains.map((domain) => ({ domain, description: "" }));

describe("isDomainAuthorized (the reference rule)", () => {
  it("an empty list authorises everything, even URLs that do not parse", () => {
    expect(isDomainAuthorized("https://anything.example/", [])).toBe(true);
    expect(isDomainAuthorized("not a url", [])).toBe(true);
  });

  const allowed = list("customer.example.com");

  it.each([
    ["https://customer.example.com/hooks", true],
    ["https://hooks.customer.example.com/x", true],
    ["https://a.b.customer.example.com/", true],
    ["https://evilcustomer.example.com/", false],
    ["https://customer.example.com.evil.net/", false],
    ["https://example.com/", false],
    ["https://other.example.com/", false],
  ])("exact or subdomain: %s -> %s", (url, expected) => {
    expect(isDomainAuthorized(url, allowed)).toBe(expected);
  });

  it("ignores the port and the case of both sides", () => {
    expect(isDomainAuthorized("https://customer.example.com:8443/x", allowed)).toBe(true);
    expect(isDomainAuthorized("HTTPS://Customer.EXAMPLE.com:443/", allowed)).toBe(true);
    expect(isDomainAuthorized("https://hooks.customer.example.com/", list("CUSTOMER.Example.COM"))).toBe(true);
  });

  it("reads the host the HTTP client will connect to, not userinfo or look-alikes", () => {
    expect(isDomainAuthorized("https://customer.example.com@evil.net/", allowed)).toBe(false);
    expect(isDomainAuthorized("https://user:pw@customer.example.com/", allowed)).toBe(true);
    // urlparse would call this host customer.example.com; WHATWG URL (and so undici) says evil.net
    expect(isDomainAuthorized("http://evil.net\\@customer.example.com/", allowed)).toBe(false);
    expect(isDomainAuthorized("https://evil.net/?customer.example.com", allowed)).toBe(false);
    expect(isDomainAuthorized("https://evil.net/#.customer.example.com", allowed)).toBe(false);
  });

  it("treats a trailing root dot as the same host", () => {
    expect(isDomainAuthorized("https://customer.example.com./", allowed)).toBe(true);
    expect(isDomainAuthorized("https://customer.example.com/", list("customer.example.com."))).toBe(true);
  });

  it("matches IDN entries against the punycode host", () => {
    expect(isDomainAuthorized("https://hooks.bücher.example/", list("bücher.example"))).toBe(true);
    expect(isDomainAuthorized("https://hooks.xn--bcher-kva.example/", list("bücher.example"))).toBe(true);
    expect(isDomainAuthorized("https://hooks.bücher.example/", list("xn--bcher-kva.example"))).toBe(true);
  });

  it("compares IP hosts exactly, IPv6 without brackets as urlparse gives it", () => {
    expect(isDomainAuthorized("http://[::1]:8080/", list("::1"))).toBe(true);
    expect(isDomainAuthorized("http://[::1]:8080/", list("[::1]"))).toBe(true);
    expect(isDomainAuthorized("http://[2001:db8::1]/", list("2001:DB8:0:0::1"))).toBe(true);
    expect(isDomainAuthorized("http://10.0.0.1/", list("10.0.0.1"))).toBe(true);
    expect(isDomainAuthorized("http://2130706433/", list("127.0.0.1"))).toBe(true);
    // no "subdomain" of an address: 10.0.0.1 ends with ".0.0.1" but is not under it
    expect(isDomainAuthorized("http://10.0.0.1/", list("0.0.1"))).toBe(false);
    expect(isDomainAuthorized("http://10.0.0.1/", list("0.1"))).toBe(false);
  });

  it("refuses unparsable URLs and URLs without a host", () => {
    expect(isDomainAuthorized("not a url", allowed)).toBe(false);
    expect(isDomainAuthorized("http://[bad/", allowed)).toBe(false);
    expect(isDomainAuthorized("mailto:ops@customer.example.com", allowed)).toBe(false);
    expect(isDomainAuthorized("", allowed)).toBe(false);
  });

  it("an empty entry authorises nothing; any matching entry is enough", () => {
    expect(isDomainAuthorized("https://customer.example.com./", list(""))).toBe(false);
    expect(isDomainAuthorized("https://x.partner.example/", list("", "customer.example.com", "partner.example"))).toBe(true);
  });
});
