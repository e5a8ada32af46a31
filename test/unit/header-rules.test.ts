import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { headerNameProblem, headerValueProblem, requestHeadersProblem } from "../../src/domain/header-rules.js";

// undici's own checks, read from the installed version, so the rule is held against what it refuses.
const undiciUtil = createRequire(import.meta.url)("undici/lib/core/util.js") as {
  isValidHeaderValue: (value: string) => boolean;
  isValidHTTPToken: (name: string) => boolean;
};

const everyCodeUnit = Array.from({ length: 0x10000 }, (_, c) => String.fromCharCode(c));

describe("headerValueProblem", () => {
  it.each(["", "acme", "order.created:v2", "acme corp/eu-1", "Bearer abc.def", "!~"])("accepts %j", (value) => {
    expect(headerValueProblem(value)).toBeUndefined();
  });

  it.each([
    ["CR LF", "a\r\nX-Injected: 1", "control"],
    ["NUL", "a\u0000", "control"],
    ["HTAB", "a\tb", "control"],
    ["DEL", "a\u007f", "control"],
    ["latin1", "société", "non-ASCII"],
    ["CJK", "注文確定", "non-ASCII"],
    ["emoji", "a\u{1F600}", "non-ASCII"],
    ["a lone surrogate", "a\ud800", "non-ASCII"],
    ["a leading space", " acme", "space"],
    ["a trailing space", "acme ", "space"],
  ])("refuses %s", (_what, value, problem) => {
    expect(headerValueProblem(value)).toContain(problem);
  });

  it("accepts only values undici 7 accepts (a strict subset)", () => {
    const accepted = everyCodeUnit.filter((c) => headerValueProblem(`a${c}b`) === undefined);
    expect(accepted).toHaveLength(0x7e - 0x20 + 1);
    for (const c of accepted) expect(undiciUtil.isValidHeaderValue(`a${c}b`), `U+${c.charCodeAt(0).toString(16)}`).toBe(true);
  });
});

describe("headerNameProblem", () => {
  it("is exactly undici's RFC 9110 token check", () => {
    for (const c of everyCodeUnit.slice(0, 0x100)) {
      expect(headerNameProblem(`x${c}`) === undefined, `U+${c.charCodeAt(0).toString(16)}`).toBe(undiciUtil.isValidHTTPToken(`x${c}`));
    }
    expect(headerNameProblem("")).toBeDefined();
    expect(headerNameProblem("X-Pyfly-Event-Type")).toBeUndefined();
  });
});

describe("requestHeadersProblem", () => {
  it("accepts the headers of an ordinary delivery", () => {
    expect(
      requestHeadersProblem({ "Content-Type": "application/json", "X-Pyfly-Event-Type": "order.created", "X-Pyfly-Tenant-Id": "acme" }),
    ).toBeUndefined();
  });

  it("names the first bad header and the problem, not the value", () => {
    expect(requestHeadersProblem({ "Content-Type": "application/json", "X-Pyfly-Event-Type": "注文" })).toBe(
      "header X-Pyfly-Event-Type contains a non-ASCII character (only printable ASCII can be sent in an HTTP header)",
    );
    expect(requestHeadersProblem({ "X Team": "billing" })).toBe("header X Team is not a valid HTTP header name (RFC 9110 token)");
  });

  it.each([
    "Host",
    "content-length",
    "Transfer-Encoding",
    "Connection",
    "Keep-Alive",
    "Upgrade",
    "Expect",
    "TE",
    "Trailer",
    "Proxy-Connection",
  ])("refuses the framing header %s", (name) => {
    expect(requestHeadersProblem({ [name]: "x" })).toBe(`header ${name} is set by the HTTP client`);
  });
});
