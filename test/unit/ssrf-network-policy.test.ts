import { describe, expect, it } from "vitest";
import { InvalidCidrError } from "../../src/shared/ip-address.js";
import { createNetworkPolicy } from "../../src/delivery/ssrf/network-policy.js";

const HINT = "set pyfly.callbacks.http.allow-private-networks or add it to allowed-cidrs";
const strict = createNetworkPolicy({ allowPrivateNetworks: false, allowedCidrs: [] });

describe("default policy (nothing allowed but public unicast)", () => {
  it("names the address, its category and the two ways out", () => {
    expect(strict.check("127.0.0.1")).toEqual({ allowed: false, reason: `address 127.0.0.1 is loopback; ${HINT}` });
    expect(strict.check("10.0.0.1")).toEqual({ allowed: false, reason: `address 10.0.0.1 is private; ${HINT}` });
    expect(strict.check("100.64.0.1")).toEqual({
      allowed: false,
      reason: `address 100.64.0.1 is carrier-grade NAT (100.64.0.0/10); ${HINT}`,
    });
    expect(strict.check("192.0.2.1")).toMatchObject({ reason: expect.stringContaining("is reserved for documentation;") });
  });

  it.each([
    "0.0.0.0",
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.0.1",
    "169.254.169.254",
    "100.64.0.1",
    "224.0.0.251",
    "255.255.255.255",
    "240.0.0.1",
    "198.18.0.1",
    "192.0.2.1",
    "::",
    "::1",
    "fe80::1",
    "fe80::1%lo",
    "fd00::1",
    "ff02::1",
    "2001:db8::1",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",
    "64:ff9b::a9fe:a9fe",
    "2002:7f00:1::",
  ])("refuses %s", (address) => {
    expect(strict.check(address).allowed).toBe(false);
  });

  it.each(["8.8.8.8", "93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"])("allows %s", (address) => {
    expect(strict.check(address)).toEqual({ allowed: true });
  });

  it("judges a mapped IPv4-in-IPv6 address as the IPv4, and says so", () => {
    expect(strict.check("::ffff:7f00:1")).toEqual({
      allowed: false,
      reason: `address ::ffff:127.0.0.1 (IPv4 127.0.0.1) is loopback; ${HINT}`,
    });
  });

  it("reads odd IPv4 spellings before judging", () => {
    expect(strict.check("2130706433")).toMatchObject({ allowed: false, reason: expect.stringContaining("address 127.0.0.1 is loopback") });
    expect(strict.check("0xa9fea9fe")).toMatchObject({ allowed: false, reason: expect.stringContaining("169.254.169.254 is link-local") });
  });

  it("refuses what is not an IP address (fail closed)", () => {
    expect(strict.check("localhost")).toEqual({ allowed: false, reason: '"localhost" is not an IP address' });
    expect(strict.check("")).toMatchObject({ allowed: false });
  });

  it("is not allow-everything", () => {
    expect(strict.allowsEverything).toBe(false);
  });
});

describe("allowedCidrs", () => {
  const policy = createNetworkPolicy({ allowPrivateNetworks: false, allowedCidrs: ["127.0.0.1/32", "10.20.0.0/16", "fd00:1::/32"] });

  it("opens exactly the listed ranges", () => {
    expect(policy.check("127.0.0.1").allowed).toBe(true);
    expect(policy.check("127.0.0.2").allowed).toBe(false);
    expect(policy.check("10.20.255.1").allowed).toBe(true);
    expect(policy.check("10.21.0.1").allowed).toBe(false);
    expect(policy.check("fd00:1:ffff::1").allowed).toBe(true);
    expect(policy.check("fd00:2::1").allowed).toBe(false);
    expect(policy.check("8.8.8.8").allowed).toBe(true);
  });

  it("an IPv4 range also covers the IPv6 forms carrying that IPv4", () => {
    expect(policy.check("::ffff:127.0.0.1").allowed).toBe(true);
    expect(policy.check("::ffff:7f00:2").allowed).toBe(false);
    expect(policy.check("64:ff9b::a14:1").allowed).toBe(true);
  });

  it("an IPv6 range written over mapped addresses works too", () => {
    const mapped = createNetworkPolicy({ allowPrivateNetworks: false, allowedCidrs: ["::ffff:127.0.0.0/104"] });
    expect(mapped.check("::ffff:127.0.0.9").allowed).toBe(true);
    expect(mapped.check("127.0.0.9").allowed).toBe(false);
  });

  it("fails at creation on a bad entry, naming key, index and value", () => {
    const create = () => createNetworkPolicy({ allowPrivateNetworks: false, allowedCidrs: ["10.0.0.0/8", "10.0.0/8"] });
    expect(create).toThrow(InvalidCidrError);
    expect(create).toThrow('pyfly.callbacks.http.allowed-cidrs[1]: invalid CIDR "10.0.0/8"');
  });

  it("validates entries even when private networks are allowed", () => {
    expect(() => createNetworkPolicy({ allowPrivateNetworks: true, allowedCidrs: ["nope"] })).toThrow(/allowed-cidrs\[0\]/);
  });
});

describe("allowPrivateNetworks", () => {
  const open = createNetworkPolicy({ allowPrivateNetworks: true, allowedCidrs: [] });

  it("allows every address, loopback and link-local included", () => {
    expect(open.allowsEverything).toBe(true);
    for (const a of ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "fe80::1", "8.8.8.8"]) {
      expect(open.check(a)).toEqual({ allowed: true });
    }
  });
});
