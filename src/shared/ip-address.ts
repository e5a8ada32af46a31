/**
 * IP address parsing, formatting and CIDR matching. Pure: no DNS, no sockets.
 *
 * The SSRF guard judges the address a socket is about to connect to, so every spelling that can
 * reach `net.connect` or come back from a resolver must parse to the same canonical value here;
 * anything that does not parse is "not an IP address". What an address is (private, loopback...)
 * is the guard's own table: delivery/ssrf/address-category.ts.
 */
import { SidecarError } from "./errors.js";

export interface IPv4Address {
  readonly family: 4;
  /** Unsigned 32-bit value. */
  readonly value: number;
  /** Canonical dotted-quad text. */
  readonly text: string;
}

export interface IPv6Address {
  readonly family: 6;
  /** Unsigned 128-bit value. */
  readonly value: bigint;
  /** Canonical RFC 5952 text, without the zone. */
  readonly text: string;
  /** Zone id (`eth0` in `fe80::1%eth0`); never part of the comparison. */
  readonly zone?: string;
}

export type IpAddress = IPv4Address | IPv6Address;

/** How an IPv6 address carries an IPv4 one (see {@link embeddedIPv4}). */
export type EmbeddingKind = "mapped" | "compatible" | "nat64" | "6to4";

export interface EmbeddedIPv4 {
  readonly kind: EmbeddingKind;
  readonly ipv4: IPv4Address;
}

export interface Cidr {
  readonly family: 4 | 6;
  readonly prefix: number;
  /** Network address (host bits zero), same representation as the address values. */
  readonly network: number | bigint;
  /** Canonical `address/prefix` text. */
  readonly text: string;
}

export class InvalidCidrError extends SidecarError {
  constructor(
    readonly value: string,
    detail: string,
  ) {
    super("INVALID_CIDR", `invalid CIDR ${JSON.stringify(value)}: ${detail}`);
  }
}

// ---------------------------------------------------------------- IPv4

export function formatIPv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff].join(".");
}

function ipv4(value: number): IPv4Address {
  const v = value >>> 0;
  return { family: 4, value: v, text: formatIPv4(v) };
}

// One inet_aton component: decimal, octal with a leading 0, hex with 0x.
function parseInetAtonPart(part: string): number | null {
  if (part === "") return null;
  let digits = part;
  let radix = 10;
  let pattern = /^[0-9]+$/;
  if (/^0x/i.test(part)) {
    digits = part.slice(2);
    radix = 16;
    pattern = /^[0-9a-f]+$/i;
    // WHATWG URL reads a bare "0x" as 0; agreeing keeps the guard from seeing a hostname where the
    // connection sees 0.0.0.0.
    if (digits === "") return 0;
  } else if (part.length > 1 && part.startsWith("0")) {
    digits = part.slice(1);
    radix = 8;
    pattern = /^[0-7]+$/;
  }
  if (!pattern.test(digits)) return null;
  const n = Number.parseInt(digits, radix);
  return Number.isFinite(n) ? n : null;
}

/**
 * IPv4 in every spelling inet_aton (and so getaddrinfo) and the WHATWG URL host parser accept:
 * `127.0.0.1`, `2130706433`, `0x7f000001`, `0x7f.1`, `0177.0.0.1`, `127.1`, one trailing dot.
 * Node's `new URL()` already normalises these for http(s) URLs, but a host given to
 * `net.connect` directly would still reach getaddrinfo un-normalised, so the guard must read them.
 */
export function parseIPv4(input: string): IPv4Address | null {
  const text = input.endsWith(".") ? input.slice(0, -1) : input;
  const parts = text.split(".");
  if (parts.length < 1 || parts.length > 4) return null;
  const nums: number[] = [];
  for (const part of parts) {
    const n = parseInetAtonPart(part);
    if (n === null) return null;
    nums.push(n);
  }
  const last = nums.pop() as number;
  // The last component fills all the bytes the others did not: a.b -> a, 24 bits.
  if (last >= 2 ** (8 * (4 - nums.length))) return null;
  let value = 0;
  nums.forEach((n, i) => {
    value += n * 2 ** (8 * (3 - i));
  });
  if (nums.some((n) => n > 255)) return null;
  return ipv4(value + last);
}

// Strict a.b.c.d, decimal, no leading zeros: the only IPv4 form allowed inside IPv6 text and in
// configuration, where an octal reading would be a surprise.
function parseDottedQuad(text: string): number | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const n = Number(part);
    if (n > 255) return null;
    value = value * 256 + n;
  }
  return value;
}

// ---------------------------------------------------------------- IPv6

const V6_BITS = 128n;
const V6_MAX = (1n << V6_BITS) - 1n;

function parseGroups(text: string, allowTrailingIPv4: boolean): number[] | null {
  if (text === "") return [];
  const parts = text.split(":");
  const groups: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    if (allowTrailingIPv4 && i === parts.length - 1 && part.includes(".")) {
      const v4 = parseDottedQuad(part);
      if (v4 === null) return null;
      groups.push(v4 >>> 16, v4 & 0xffff);
      continue;
    }
    if (!/^[0-9a-f]{1,4}$/i.test(part)) return null;
    groups.push(Number.parseInt(part, 16));
  }
  return groups;
}

/** RFC 5952 text; IPv4-mapped addresses keep the dotted tail (RFC 5952 section 5). */
export function formatIPv6(value: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  if (value >> 32n === 0xffffn) return `::ffff:${formatIPv4(Number(value & 0xffffffffn))}`;
  // Longest run of two or more zero groups; the first one wins a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** IPv6 text as inet_pton reads it, plus an optional `%zone`. No brackets (see {@link parseIp}). */
export function parseIPv6(input: string): IPv6Address | null {
  let text = input;
  let zone: string | undefined;
  const pct = text.indexOf("%");
  if (pct >= 0) {
    zone = text.slice(pct + 1);
    text = text.slice(0, pct);
    if (zone === "") return null;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  let groups: number[];
  if (halves.length === 2) {
    const head = parseGroups(halves[0] as string, false);
    const tail = parseGroups(halves[1] as string, true);
    if (head === null || tail === null || head.length + tail.length > 7) return null;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = parseGroups(text, true);
    if (all === null || all.length !== 8) return null;
    groups = all;
  }
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(g);
  return zone === undefined ? { family: 6, value, text: formatIPv6(value) } : { family: 6, value, text: formatIPv6(value), zone };
}

// ---------------------------------------------------------------- any

/**
 * Any IP spelling a URL host, a `net.connect` host or a resolver answer can take: IPv4 (all
 * inet_aton forms), IPv6 with or without `[]` and with an optional zone. `null` when it is not an
 * IP address (for example a DNS name).
 */
export function parseIp(input: string): IpAddress | null {
  const text = input.trim();
  if (text.startsWith("[") && text.endsWith("]")) return parseIPv6(text.slice(1, -1));
  if (text.includes(":")) return parseIPv6(text);
  return parseIPv4(text);
}

/**
 * The IPv4 address an IPv6 address carries, where the IPv6 form reaches (or stands for) that
 * IPv4 host:
 * - mapped `::ffff:a.b.c.d`: a dual-stack socket connects to the IPv4 host itself;
 * - compatible `::a.b.c.d` (deprecated, `::` and `::1` excluded);
 * - NAT64 well-known prefix `64:ff9b::/96`: a translator forwards to the IPv4 host, and DNS64
 *   hands these out for ordinary public IPv4-only receivers;
 * - 6to4 `2002:aabb:ccdd::/48`: relayed to the IPv4 host.
 */
export function embeddedIPv4(addr: IPv6Address): EmbeddedIPv4 | null {
  const v = addr.value;
  const low32 = Number(v & 0xffffffffn);
  if (v >> 32n === 0xffffn) return { kind: "mapped", ipv4: ipv4(low32) };
  if (v >> 32n === 0n && v > 1n) return { kind: "compatible", ipv4: ipv4(low32) };
  if (v >> 32n === 0x0064ff9b0000000000000000n) return { kind: "nat64", ipv4: ipv4(low32) };
  if (v >> 112n === 0x2002n) return { kind: "6to4", ipv4: ipv4(Number((v >> 80n) & 0xffffffffn)) };
  return null;
}

// ---------------------------------------------------------------- CIDR

function v4Mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

function v6Mask(prefix: number): bigint {
  return prefix === 0 ? 0n : (V6_MAX << BigInt(128 - prefix)) & V6_MAX;
}

function cidrOf(addr: IpAddress, prefix: number): Cidr {
  if (addr.family === 4) {
    const network = (addr.value & v4Mask(prefix)) >>> 0;
    return { family: 4, prefix, network, text: `${formatIPv4(network)}/${prefix}` };
  }
  const network = addr.value & v6Mask(prefix);
  return { family: 6, prefix, network, text: `${formatIPv6(network)}/${prefix}` };
}

/**
 * `10.0.0.0/8`, `fc00::/7`; a bare address means a single host (/32, /128). Strict, because it
 * comes from configuration: dotted-decimal IPv4 only, no zone, and no host bits set (`10.0.0.1/8`
 * is almost always a typo for a narrower range, so it is refused instead of widened).
 * Throws {@link InvalidCidrError} naming the value.
 */
export function parseCidr(input: string): Cidr {
  const text = input.trim();
  const slash = text.indexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const prefixText = slash < 0 ? undefined : text.slice(slash + 1);
  let addr: IpAddress | null;
  if (addrText.includes(":")) {
    if (addrText.includes("%")) throw new InvalidCidrError(input, "a zone id is not allowed");
    addr = parseIPv6(addrText);
  } else {
    const v4 = parseDottedQuad(addrText);
    addr = v4 === null ? null : ipv4(v4);
  }
  if (addr === null) {
    throw new InvalidCidrError(input, `${JSON.stringify(addrText)} is not an IPv4 (a.b.c.d) or IPv6 address`);
  }
  const maxPrefix = addr.family === 4 ? 32 : 128;
  let prefix = maxPrefix;
  if (prefixText !== undefined) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || Number(prefixText) > maxPrefix) {
      throw new InvalidCidrError(input, `prefix length must be a whole number from 0 to ${maxPrefix}`);
    }
    prefix = Number(prefixText);
  }
  const cidr = cidrOf(addr, prefix);
  const network = addr.family === 4 ? formatIPv4(cidr.network as number) : formatIPv6(cidr.network as bigint);
  if (network !== addr.text) {
    throw new InvalidCidrError(input, `host bits are set (did you mean ${cidr.text}?)`);
  }
  return cidr;
}

/** True when `addr` is inside `cidr`. Families never cross: use {@link embeddedIPv4} for that. */
export function cidrContains(cidr: Cidr, addr: IpAddress): boolean {
  if (cidr.family === 4 && addr.family === 4) {
    return (addr.value & v4Mask(cidr.prefix)) >>> 0 === cidr.network;
  }
  if (cidr.family === 6 && addr.family === 6) {
    return (addr.value & v6Mask(cidr.prefix)) === cidr.network;
  }
  return false;
}
