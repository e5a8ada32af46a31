/**
 * What kind of destination an address is, from IANA's special-purpose registries and the known
 * cloud metadata addresses: the SSRF guard's range table. Pure.
 */
import {
  cidrContains,
  embeddedIPv4,
  parseCidr,
  type Cidr,
  type IPv4Address,
  type IPv6Address,
  type IpAddress,
} from "../../shared/ip-address.js";

/** What kind of destination an address is. Everything but `public` is refused by default. */
export type AddressCategory =
  | "public"
  | "unspecified"
  | "loopback"
  | "private"
  | "link-local"
  | "cgnat"
  | "multicast"
  | "broadcast"
  | "documentation"
  | "benchmarking"
  | "reserved"
  | "cloud-metadata";

type Range = readonly [cidr: Cidr, category: AddressCategory];

function ranges(rows: readonly (readonly [string, AddressCategory])[]): Range[] {
  return rows.map(([text, category]) => [parseCidr(text), category] as const);
}

/*
 * Most specific first: the first match wins. Every range IANA's IPv4 and IPv6 Special-Purpose Address
 * Registries mark not globally reachable is here or falls outside 2000::/3 (IPv6). Some ranges are
 * refused whole although IANA lists a few globally reachable addresses inside (192.0.0.9/32 and
 * 192.0.0.10/32; 2001:1::1-3, 2001:3::/32, 2001:4:112::/48, 2001:20::/28 and 2001:30::/28 in
 * 2001::/23): anycast and infrastructure services, never webhook receivers.
 *
 * Cloud instance metadata services mostly live in those ranges already: 169.254.169.254 (AWS, GCP
 * metadata.google.internal, Azure IMDS, Oracle, DigitalOcean, OpenStack...), 169.254.170.2 (AWS
 * ECS), 169.254.0.23 (Tencent), 169.254.42.42 (Scaleway) are link-local; 100.100.100.200 (Alibaba)
 * is in 100.64.0.0/10; 192.0.0.192 (Oracle, legacy) is in 192.0.0.0/24; fd00:ec2::254 (AWS IPv6),
 * fd20:ce::254 (GCP IPv6) and fd00:42::42 (Scaleway) are unique-local. The ones on public addresses
 * are listed as "cloud-metadata".
 */
const V4_RANGES = ranges([
  // Azure WireServer (VM agent, extensions, platform DNS and health probes): a Microsoft public IP
  // that every Azure VM reaches and that answers with the VM's own configuration.
  ["168.63.129.16/32", "cloud-metadata"],
  ["255.255.255.255/32", "broadcast"],
  ["0.0.0.0/8", "unspecified"], // "this network"; 0.0.0.0 dials the local host on Linux
  ["10.0.0.0/8", "private"],
  ["100.64.0.0/10", "cgnat"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local"], // includes the 169.254.169.254 cloud metadata endpoint
  ["172.16.0.0/12", "private"],
  ["192.0.0.0/24", "reserved"], // IETF protocol assignments
  ["192.0.2.0/24", "documentation"],
  ["192.88.99.0/24", "reserved"], // deprecated 6to4 relay anycast
  ["192.168.0.0/16", "private"],
  ["198.18.0.0/15", "benchmarking"],
  ["198.51.100.0/24", "documentation"],
  ["203.0.113.0/24", "documentation"],
  ["224.0.0.0/4", "multicast"],
  ["240.0.0.0/4", "reserved"],
]);

const V6_RANGES = ranges([
  ["::/128", "unspecified"],
  ["::1/128", "loopback"],
  ["64:ff9b:1::/48", "private"], // RFC 8215 local-use NAT64: reaches whatever the operator maps
  ["100::/64", "reserved"], // discard-only
  ["2001:db8::/32", "documentation"],
  ["2001::/23", "reserved"], // IETF protocol assignments, incl. Teredo 2001::/32
  ["3fff::/20", "documentation"],
  ["fc00::/7", "private"], // unique local
  ["fe80::/10", "link-local"],
  ["fec0::/10", "private"], // deprecated site-local
  ["ff00::/8", "multicast"],
]);

// Only 2000::/3 is allocated as global unicast; everything else in IPv6 is special-purpose.
const V6_GLOBAL_UNICAST = parseCidr("2000::/3");

function findCategory(table: readonly Range[], addr: IpAddress): AddressCategory | null {
  for (const [cidr, category] of table) if (cidrContains(cidr, addr)) return category;
  return null;
}

export function classifyIPv4(addr: IPv4Address): AddressCategory {
  return findCategory(V4_RANGES, addr) ?? "public";
}

/**
 * IPv6 addresses carrying an IPv4 address take the IPv4's category when that is not public, so
 * `::ffff:127.0.0.1`, `64:ff9b::a00:1` and `2002:a9fe:a9fe::` are judged like 127.0.0.1,
 * 10.0.0.1 and 169.254.169.254. With a public IPv4 inside, mapped/NAT64/6to4 are public (they are
 * how v6-only hosts reach v4 receivers); the deprecated compatible form is reserved.
 */
export function classifyIPv6(addr: IPv6Address): AddressCategory {
  if (addr.value === 0n) return "unspecified";
  if (addr.value === 1n) return "loopback";
  const embedded = embeddedIPv4(addr);
  if (embedded !== null) {
    const inner = classifyIPv4(embedded.ipv4);
    if (inner !== "public") return inner;
    return embedded.kind === "compatible" ? "reserved" : "public";
  }
  const special = findCategory(V6_RANGES, addr);
  if (special !== null) return special;
  return cidrContains(V6_GLOBAL_UNICAST, addr) ? "public" : "reserved";
}

export function classifyIp(addr: IpAddress): AddressCategory {
  return addr.family === 4 ? classifyIPv4(addr) : classifyIPv6(addr);
}

/** Wording for messages: "address 10.0.0.1 is private". */
export function describeCategory(category: AddressCategory): string {
  switch (category) {
    case "cgnat":
      return "carrier-grade NAT (100.64.0.0/10)";
    case "documentation":
      return "reserved for documentation";
    case "benchmarking":
      return "reserved for benchmarking (198.18.0.0/15)";
    case "cloud-metadata":
      return "a cloud metadata endpoint";
    default:
      return category;
  }
}
