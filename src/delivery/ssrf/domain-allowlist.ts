/**
 * The reference's `authorized_domains` rule (pyfly.callbacks): with a non-empty list, the target
 * URL's host, lower-cased and without port, must equal an entry or end with "." + entry.
 *
 * The host is read with WHATWG `new URL()`, the parser undici uses for the request itself, not a
 * re-implementation of Python's `urlparse`: a check on a host the client would not connect to is
 * no check (`http://evil.example\@customer.example.com/` is evil.example to WHATWG and to undici,
 * but customer.example.com to `urlparse`). What `urlparse(url).hostname` gives is kept where it
 * matters: no userinfo, no port, lower case, IPv6 without brackets.
 */
import { domainToASCII } from "node:url";
import { parseIp } from "../../shared/ip-address.js";

export interface AuthorizedDomainEntry {
  readonly domain: string;
}

/** Comparable form: lower case, no trailing root dot, IDN as punycode, IP addresses canonical. */
function normaliseHost(raw: string): { host: string; isIp: boolean } {
  let host = raw.toLowerCase();
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  // "example.com." names the same host as "example.com"; urlparse would keep the dot and refuse.
  if (host.endsWith(".") && host.length > 1) host = host.slice(0, -1);
  const ip = parseIp(host);
  if (ip !== null) return { host: ip.text, isIp: true };
  // URL hosts arrive as punycode; an entry written as "bücher.example" should still match them.
  const ascii = domainToASCII(host);
  return { host: ascii === "" ? host : ascii, isIp: false };
}

/**
 * `false` for a URL that does not parse or has no host. IP-literal hosts only match exactly:
 * "10.0.0.1" ending with ".0.0.1" is not a subdomain of anything.
 */
export function isDomainAuthorized(targetUrl: string, authorizedDomains: readonly AuthorizedDomainEntry[]): boolean {
  if (authorizedDomains.length === 0) return true;
  let hostname: string;
  try {
    hostname = new URL(targetUrl).hostname;
  } catch {
    return false;
  }
  if (hostname === "") return false;
  const target = normaliseHost(hostname);
  return authorizedDomains.some(({ domain }) => {
    // An empty entry would otherwise match every host ending in "."; it authorises nothing.
    if (domain.trim() === "") return false;
    const entry = normaliseHost(domain.trim());
    if (target.host === entry.host) return true;
    return !target.isIp && !entry.isIp && target.host.endsWith(`.${entry.host}`);
  });
}
