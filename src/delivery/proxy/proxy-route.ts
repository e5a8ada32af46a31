/**
 * Which deliveries go through the egress proxy. Pure: settings in, a decision per target out.
 *
 * The conventions are curl's and Go's: HTTPS_PROXY for https targets, HTTP_PROXY for http ones
 * (lower-case names first), NO_PROXY a comma-separated list of `*`, domain names (a name also
 * covers its subdomains; a leading dot means the same), IP addresses and CIDR ranges, each with an
 * optional `:port`. IP entries and ranges match targets written as IP literals; names are never
 * resolved to decide (the proxy question is asked before any DNS).
 */
import { SidecarError } from "../../shared/errors.js";
import { cidrContains, parseCidr, parseIp, type Cidr } from "../../shared/ip-address.js";

/** A proxy as configured: where it listens and the Basic credentials it wants, if any. */
export interface ProxyEndpoint {
  host: string;
  port: number;
  /** `Proxy-Authorization` value; never logged. */
  authorization: string | undefined;
  /** The proxy's URL without credentials, for logs and errors. */
  display: string;
}

export interface ProxySettings {
  /** Proxy for http:// targets; undefined: none. */
  http: string | undefined;
  /** Proxy for https:// targets. */
  https: string | undefined;
  noProxy: string[];
}

type Exclusion =
  { kind: "all" } | { kind: "domain"; name: string; port: number | undefined } | { kind: "cidr"; cidr: Cidr; port: number | undefined };

/** A proxy URL we cannot use; `message` never carries its credentials. */
export class ProxyUrlError extends SidecarError {
  constructor(message: string) {
    super("PROXY_URL_INVALID", message);
  }
}

/** Reads a proxy URL: http:// only (a CONNECT proxy), credentials from its user and password. */
export function parseProxyUrl(text: string): ProxyEndpoint {
  let url: URL;
  try {
    url = new URL(text.includes("://") ? text : `http://${text}`);
  } catch {
    throw new ProxyUrlError("not a URL");
  }
  if (url.protocol !== "http:") throw new ProxyUrlError(`expected an http:// proxy (CONNECT), got scheme ${url.protocol}`);
  if (url.hostname === "") throw new ProxyUrlError("the proxy URL has no host");
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  const authorization = user || password ? `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` : undefined;
  const port = url.port === "" ? 80 : Number(url.port);
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  return { host, port, authorization, display: `http://${url.host}` };
}

function parseExclusion(entry: string): Exclusion | undefined {
  const text = entry.trim().toLowerCase();
  if (text === "") return undefined;
  if (text === "*") return { kind: "all" };
  // "[::1]:8080", "10.0.0.0/8:443", "example.com:8443", "::1" (a bare IPv6 address has no port).
  let host = text;
  let port: number | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    port = bracketed[2] === undefined ? undefined : Number(bracketed[2]);
  } else if ((text.match(/:/g) ?? []).length === 1) {
    const [h, p] = text.split(":");
    if (/^\d+$/.test(p!)) {
      host = h!;
      port = Number(p);
    }
  }
  if (parseIp(host) !== null || host.includes("/")) {
    try {
      return { kind: "cidr", cidr: parseCidr(host.includes("/") ? host : `${host}/${parseIp(host)!.family === 4 ? 32 : 128}`), port };
    } catch {
      return { kind: "domain", name: host.replace(/^\*?\./, ""), port };
    }
  }
  return { kind: "domain", name: host.replace(/^\*?\./, ""), port };
}

export interface ProxyRoute {
  /** The proxy for this target, or undefined to connect directly. */
  proxyFor(protocol: string, hostname: string, port: number): ProxyEndpoint | undefined;
}

/** Throws ProxyUrlError for a proxy URL that cannot be used (the caller names the key). */
export function createProxyRoute(settings: ProxySettings): ProxyRoute | undefined {
  if (settings.http === undefined && settings.https === undefined) return undefined;
  const http = settings.http === undefined ? undefined : parseProxyUrl(settings.http);
  const https = settings.https === undefined ? undefined : parseProxyUrl(settings.https);
  const exclusions = settings.noProxy.map(parseExclusion).filter((e): e is Exclusion => e !== undefined);
  const excluded = (hostname: string, port: number): boolean => {
    const name = hostname
      .toLowerCase()
      .replace(/^\[|\]$/g, "")
      .replace(/\.$/, "");
    const ip = parseIp(name);
    return exclusions.some((e) => {
      if (e.kind === "all") return true;
      if (e.port !== undefined && e.port !== port) return false;
      if (e.kind === "cidr") return ip !== null && cidrContains(e.cidr, ip);
      return name === e.name || name.endsWith(`.${e.name}`);
    });
  };
  return {
    proxyFor(protocol, hostname, port) {
      const proxy = protocol === "https:" ? https : protocol === "http:" ? http : undefined;
      if (proxy === undefined || excluded(hostname, port)) return undefined;
      return proxy;
    },
  };
}

/**
 * The proxy settings from the environment, as curl and Go read them: lower-case names first.
 * `config` (http.proxy in application.yml) wins over the environment for both schemes.
 */
export function proxySettingsOf(config: { url: string | undefined; noProxy: string[] | undefined }, env: NodeJS.ProcessEnv): ProxySettings {
  if (config.url !== undefined) return { http: config.url, https: config.url, noProxy: config.noProxy ?? [] };
  const read = (name: string): string | undefined => {
    const value = env[name.toLowerCase()] ?? env[name.toUpperCase()];
    return value === undefined || value.trim() === "" ? undefined : value.trim();
  };
  const noProxy = config.noProxy ?? (read("no_proxy") ?? "").split(",");
  return { http: read("http_proxy"), https: read("https_proxy"), noProxy: noProxy.map((s) => s.trim()).filter((s) => s !== "") };
}
