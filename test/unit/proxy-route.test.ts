import { describe, expect, it } from "vitest";
import { createProxyRoute, parseProxyUrl, proxySettingsOf } from "../../src/delivery/proxy/proxy-route.js";

describe("egress proxy route", () => {
  const route = (noProxy: string[]) => createProxyRoute({ http: "http://plain:3128", https: "http://secure:3129", noProxy })!;
  const via = (r: ReturnType<typeof route>, url: string) => {
    const u = new URL(url);
    return r.proxyFor(u.protocol, u.hostname, Number(u.port) || (u.protocol === "https:" ? 443 : 80))?.host ?? "direct";
  };

  it("https targets take HTTPS_PROXY, http targets HTTP_PROXY; neither set means no route at all", () => {
    const r = route([]);
    expect(via(r, "https://hooks.example.com/x")).toBe("secure");
    expect(via(r, "http://hooks.example.com/x")).toBe("plain");
    expect(createProxyRoute({ http: undefined, https: undefined, noProxy: ["x"] })).toBeUndefined();
    expect(via(createProxyRoute({ http: undefined, https: "http://secure:1", noProxy: [] })!, "http://a.example")).toBe("direct");
  });

  it.each([
    [["*"], "https://anything.example", "direct"],
    [["example.com"], "https://example.com", "direct"],
    [["example.com"], "https://hooks.example.com", "direct"],
    [[".example.com"], "https://hooks.example.com", "direct"],
    [["*.example.com"], "https://example.com", "direct"],
    [["example.com"], "https://notexample.com", "secure"],
    [["example.com:8443"], "https://example.com:8443", "direct"],
    [["example.com:8443"], "https://example.com", "secure"],
    [["10.0.0.0/8"], "https://10.1.2.3", "direct"],
    [["10.0.0.0/8"], "https://11.1.2.3", "secure"],
    [["10.0.0.0/8"], "https://ten.example", "secure"],
    [["192.168.1.10"], "https://192.168.1.10:9000", "direct"],
    [["::1"], "https://[::1]:8443", "direct"],
    [["[fd00::]/8"], "https://[fd12::1]", "secure"],
    [["fd00::/8"], "https://[fd12::1]", "direct"],
    [["HOOKS.EXAMPLE.COM"], "https://hooks.example.com.", "direct"],
  ])("NO_PROXY %j for %s: %s", (noProxy, url, expected) => {
    expect(via(route(noProxy), url)).toBe(expected);
  });

  it("a proxy URL gives host, port and Basic credentials; the display form has no credentials", () => {
    expect(parseProxyUrl("http://svc:p%40ss@proxy.internal:3128")).toEqual({
      host: "proxy.internal",
      port: 3128,
      authorization: `Basic ${Buffer.from("svc:p@ss").toString("base64")}`,
      display: "http://proxy.internal:3128",
    });
    expect(parseProxyUrl("proxy.internal:8080")).toMatchObject({ host: "proxy.internal", port: 8080, authorization: undefined });
    expect(parseProxyUrl("http://[fd00::1]")).toMatchObject({ host: "fd00::1", port: 80 });
    expect(() => parseProxyUrl("https://proxy:443")).toThrow("expected an http:// proxy (CONNECT), got scheme https:");
  });

  it("configuration wins over the environment; lower-case variables over upper-case", () => {
    expect(proxySettingsOf({ url: "http://cfg:1", noProxy: undefined }, { HTTPS_PROXY: "http://env:2", NO_PROXY: "a" })).toEqual({
      http: "http://cfg:1",
      https: "http://cfg:1",
      noProxy: [],
    });
    expect(
      proxySettingsOf({ url: undefined, noProxy: ["x"] }, { https_proxy: " http://low:1 ", HTTPS_PROXY: "http://up:2", no_proxy: "a,b" }),
    ).toEqual({
      http: undefined,
      https: "http://low:1",
      noProxy: ["x"],
    });
  });
});
