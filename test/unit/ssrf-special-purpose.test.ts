/*
 * The guard against IANA's special-purpose registries and the cloud metadata endpoints, pure
 * classification only (no socket). Registries as of 2025: iana-ipv4-special-registry and
 * iana-ipv6-special-registry, column "Globally Reachable".
 */
import { describe, expect, it } from "vitest";
import { parseIp } from "../../src/shared/ip-address.js";
import { classifyIp } from "../../src/delivery/ssrf/address-category.js";
import { createNetworkPolicy } from "../../src/delivery/ssrf/network-policy.js";

const strict = createNetworkPolicy({ allowPrivateNetworks: false, allowedCidrs: [] });
const category = (address: string) => classifyIp(parseIp(address)!);

/** Every block IANA marks not globally reachable (or N/A for a deprecated one), with its first and last address. */
const NOT_GLOBALLY_REACHABLE: readonly [block: string, first: string, last: string][] = [
  ["0.0.0.0/8 this network", "0.0.0.0", "0.255.255.255"],
  ["10.0.0.0/8 private-use", "10.0.0.0", "10.255.255.255"],
  ["100.64.0.0/10 shared address space", "100.64.0.0", "100.127.255.255"],
  ["127.0.0.0/8 loopback", "127.0.0.0", "127.255.255.255"],
  ["169.254.0.0/16 link local", "169.254.0.0", "169.254.255.255"],
  ["172.16.0.0/12 private-use", "172.16.0.0", "172.31.255.255"],
  ["192.0.0.0/24 IETF protocol assignments", "192.0.0.0", "192.0.0.255"],
  ["192.0.0.0/29 DS-Lite", "192.0.0.0", "192.0.0.7"],
  ["192.0.0.8/32 IPv4 dummy address", "192.0.0.8", "192.0.0.8"],
  ["192.0.0.170/32 NAT64/DNS64 discovery", "192.0.0.170", "192.0.0.171"],
  ["192.0.2.0/24 documentation (TEST-NET-1)", "192.0.2.0", "192.0.2.255"],
  ["192.88.99.0/24 deprecated 6to4 relay anycast", "192.88.99.0", "192.88.99.255"],
  ["192.168.0.0/16 private-use", "192.168.0.0", "192.168.255.255"],
  ["198.18.0.0/15 benchmarking", "198.18.0.0", "198.19.255.255"],
  ["198.51.100.0/24 documentation (TEST-NET-2)", "198.51.100.0", "198.51.100.255"],
  ["203.0.113.0/24 documentation (TEST-NET-3)", "203.0.113.0", "203.0.113.255"],
  ["224.0.0.0/4 multicast (multicast registry)", "224.0.0.0", "239.255.255.255"],
  ["240.0.0.0/4 reserved", "240.0.0.0", "255.255.255.254"],
  ["255.255.255.255/32 limited broadcast", "255.255.255.255", "255.255.255.255"],
  ["::1/128 loopback", "::1", "::1"],
  ["::/128 unspecified", "::", "::"],
  ["64:ff9b:1::/48 local-use IPv4/IPv6 translation", "64:ff9b:1::", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff"],
  ["100::/64 discard-only", "100::", "100::ffff:ffff:ffff:ffff"],
  ["100:0:0:1::/64 dummy IPv6 prefix", "100:0:0:1::", "100::1:ffff:ffff:ffff:ffff"],
  ["2001::/23 IETF protocol assignments", "2001::", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["2001::/32 TEREDO", "2001::", "2001:0:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["2001:2::/48 benchmarking", "2001:2::", "2001:2:0:ffff:ffff:ffff:ffff:ffff"],
  ["2001:10::/28 deprecated ORCHID", "2001:10::", "2001:1f:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["2001:db8::/32 documentation", "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["3fff::/20 documentation", "3fff::", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["5f00::/16 segment routing SIDs", "5f00::", "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["fc00::/7 unique-local", "fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["fe80::/10 link-local unicast", "fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["ff00::/8 multicast", "ff00::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
];

describe("IANA special-purpose blocks that are not globally reachable", () => {
  it.each(NOT_GLOBALLY_REACHABLE)("%s is refused, first (%s) to last (%s)", (_block, first, last) => {
    for (const address of [first, last]) {
      expect(category(address), address).not.toBe("public");
      expect(strict.check(address).allowed, address).toBe(false);
    }
  });

  it("the neighbours of the IPv4 blocks are public (the ranges are not wider than IANA's)", () => {
    for (const address of [
      "9.255.255.255",
      "11.0.0.0",
      "100.63.255.255",
      "100.128.0.0",
      "126.255.255.255",
      "128.0.0.0",
      "169.253.255.255",
      "169.255.0.0",
      "172.15.255.255",
      "172.32.0.0",
      "191.255.255.255",
      "192.0.1.0",
      "192.88.98.255",
      "192.88.100.0",
      "192.167.255.255",
      "192.169.0.0",
      "198.17.255.255",
      "198.20.0.0",
      "223.255.255.255",
    ]) {
      expect(category(address), address).toBe("public");
    }
  });
});

describe("cloud metadata endpoints", () => {
  it.each([
    ["168.63.129.16", "Azure WireServer (a public address)", "cloud-metadata"],
    ["169.254.169.254", "AWS, GCP, Azure IMDS, Oracle, DigitalOcean, OpenStack, Hetzner", "link-local"],
    ["169.254.170.2", "AWS ECS task metadata", "link-local"],
    ["169.254.170.23", "AWS EKS Pod Identity agent", "link-local"],
    ["169.254.0.23", "Tencent Cloud", "link-local"],
    ["169.254.42.42", "Scaleway", "link-local"],
    ["100.100.100.200", "Alibaba Cloud", "cgnat"],
    ["192.0.0.192", "Oracle Cloud (legacy)", "reserved"],
    ["fd00:ec2::254", "AWS IMDS over IPv6", "private"],
    ["fd00:ec2::23", "AWS EKS Pod Identity over IPv6", "private"],
    ["fd20:ce::254", "GCP metadata over IPv6", "private"],
    ["fd00:42::42", "Scaleway over IPv6", "private"],
  ])("%s (%s) is %s and refused", (address, _who, expected) => {
    expect(category(address)).toBe(expected);
    expect(strict.check(address).allowed).toBe(false);
  });

  it("names the Azure address's category in the refusal", () => {
    expect(strict.check("168.63.129.16")).toEqual({
      allowed: false,
      reason:
        "address 168.63.129.16 is a cloud metadata endpoint; set pyfly.callbacks.http.allow-private-networks or add it to allowed-cidrs",
    });
  });

  it("refuses 168.63.129.16 in every form that reaches it", () => {
    for (const address of [
      "::ffff:168.63.129.16",
      "::ffff:a83f:8110",
      "64:ff9b::a83f:8110",
      "2002:a83f:8110::1",
      "2822734096",
      "0xa83f8110",
      "168.63.33040",
    ]) {
      expect(strict.check(address).allowed, address).toBe(false);
    }
  });

  it("only that one address: its neighbours are ordinary public addresses", () => {
    for (const address of ["168.63.129.15", "168.63.129.17"]) expect(strict.check(address)).toEqual({ allowed: true });
  });

  it("opens only when the operator says so", () => {
    expect(createNetworkPolicy({ allowPrivateNetworks: false, allowedCidrs: ["168.63.129.16/32"] }).check("168.63.129.16").allowed).toBe(
      true,
    );
    expect(createNetworkPolicy({ allowPrivateNetworks: true, allowedCidrs: [] }).check("168.63.129.16").allowed).toBe(true);
  });
});
