import { describe, expect, it } from "vitest";
import {
  InvalidCidrError,
  cidrContains,
  embeddedIPv4,
  formatIPv6,
  parseCidr,
  parseIp,
  parseIPv4,
  parseIPv6,
} from "../../src/shared/ip-address.js";
import { type AddressCategory, classifyIp } from "../../src/delivery/ssrf/address-category.js";

function classify(text: string): AddressCategory {
  const addr = parseIp(text);
  if (addr === null) throw new Error(`test setup: ${text} does not parse`);
  return classifyIp(addr);
}

describe("parseIPv4: every inet_aton spelling", () => {
  it.each([
    ["127.0.0.1", "127.0.0.1"],
    ["2130706433", "127.0.0.1"],
    ["0x7f000001", "127.0.0.1"],
    ["0X7F000001", "127.0.0.1"],
    ["0x7f.1", "127.0.0.1"],
    ["0177.0.0.1", "127.0.0.1"],
    ["0177.0.0.01", "127.0.0.1"],
    ["127.1", "127.0.0.1"],
    ["127.0.1", "127.0.0.1"],
    ["10.1.65535", "10.1.255.255"],
    ["127.0.0.1.", "127.0.0.1"],
    ["0", "0.0.0.0"],
    ["0x", "0.0.0.0"],
    ["0xa9fea9fe", "169.254.169.254"],
    ["4294967295", "255.255.255.255"],
  ])("%s -> %s", (input, canonical) => {
    expect(parseIPv4(input)?.text).toBe(canonical);
  });

  it.each([
    "",
    ".",
    "1..2",
    "1.2.3.4.5",
    "256.0.0.1",
    "1.256.0.1",
    "4294967296",
    "0x100000000",
    "08.0.0.1",
    "0x7g",
    "1.2.3.4..",
    "a.b.c.d",
    "127.0.0.1/8",
    "1e3",
    " ",
  ])("rejects %j", (input) => {
    expect(parseIPv4(input)).toBeNull();
  });
});

describe("parseIPv6", () => {
  it.each([
    ["::", "::"],
    ["::1", "::1"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["FE80::1", "fe80::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
    ["::ffff:127.0.0.1", "::ffff:127.0.0.1"],
    ["::ffff:7f00:1", "::ffff:127.0.0.1"],
    ["::127.0.0.1", "::7f00:1"],
    ["64:ff9b::10.0.0.1", "64:ff9b::a00:1"],
  ])("%s -> %s", (input, canonical) => {
    expect(parseIPv6(input)?.text).toBe(canonical);
  });

  it("keeps a zone id apart from the address", () => {
    expect(parseIPv6("fe80::1%eth0")).toMatchObject({ text: "fe80::1", zone: "eth0" });
    expect(parseIPv6("fe80::1%")).toBeNull();
  });

  it.each([
    "",
    ":",
    ":::",
    "1::2::3",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7",
    "12345::",
    "g::",
    ":1::",
    "1::2:",
    "1.2.3.4::",
    "::ffff:0177.0.0.1",
    "::ffff:1.2.3",
  ])("rejects %j", (input) => {
    expect(parseIPv6(input)).toBeNull();
  });

  it("formats with the longest zero run compressed, the first on a tie (RFC 5952)", () => {
    expect(formatIPv6(parseIPv6("1:0:0:2:0:0:0:3")!.value)).toBe("1:0:0:2::3");
    expect(formatIPv6(parseIPv6("1:0:0:2:3:0:0:4")!.value)).toBe("1::2:3:0:0:4");
    expect(formatIPv6(parseIPv6("1:0:2:3:4:5:6:7")!.value)).toBe("1:0:2:3:4:5:6:7");
  });
});

describe("parseIp", () => {
  it("accepts brackets, zones, and returns null for DNS names", () => {
    expect(parseIp("[::1]")?.text).toBe("::1");
    expect(parseIp("[fe80::1%eth0]")?.family).toBe(6);
    expect(parseIp("example.com")).toBeNull();
    expect(parseIp("localhost")).toBeNull();
    expect(parseIp("1.2.3.4.example")).toBeNull();
  });

  // What Node's WHATWG URL parser leaves for the guard: for http(s) it already normalises the odd
  // IPv4 spellings to dotted quads and IPv6 to compressed form; parseIp must agree either way.
  it.each([
    ["http://2130706433:8080/", "127.0.0.1"],
    ["http://0x7f.1/", "127.0.0.1"],
    ["http://0177.0.0.1/", "127.0.0.1"],
    ["http://127.1/", "127.0.0.1"],
    ["http://0x7f000001/", "127.0.0.1"],
    ["http://%31%32%37.0.0.1/", "127.0.0.1"],
    ["http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"],
    ["http://[::ffff:7f00:1]/", "::ffff:127.0.0.1"],
    ["http://[0:0:0:0:0:0:0:1]/", "::1"],
    ["http://0/", "0.0.0.0"],
    ["http://169.254.169.254./", "169.254.169.254"],
  ])("new URL(%s).hostname -> %s", (url, canonical) => {
    expect(parseIp(new URL(url).hostname)?.text).toBe(canonical);
  });

  it("reads hosts left un-normalised by non-special URL schemes", () => {
    expect(parseIp(new URL("foo://0x7f.1/").hostname)?.text).toBe("127.0.0.1");
  });
});

describe("classifyIp", () => {
  it.each<[string, AddressCategory]>([
    // IPv4
    ["0.0.0.0", "unspecified"],
    ["0.255.255.255", "unspecified"],
    ["10.0.0.1", "private"],
    ["10.255.255.255", "private"],
    ["100.63.255.255", "public"],
    ["100.64.0.1", "cgnat"],
    ["100.127.255.255", "cgnat"],
    ["100.128.0.0", "public"],
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["169.254.0.1", "link-local"],
    ["169.254.169.254", "link-local"],
    ["172.15.255.255", "public"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["172.32.0.0", "public"],
    ["192.0.0.8", "reserved"],
    ["192.0.2.10", "documentation"],
    ["192.88.99.1", "reserved"],
    ["192.168.1.1", "private"],
    ["198.17.255.255", "public"],
    ["198.18.0.1", "benchmarking"],
    ["198.19.255.255", "benchmarking"],
    ["198.51.100.7", "documentation"],
    ["203.0.113.9", "documentation"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.255", "multicast"],
    ["240.0.0.1", "reserved"],
    ["255.255.255.254", "reserved"],
    ["255.255.255.255", "broadcast"],
    ["8.8.8.8", "public"],
    ["93.184.216.34", "public"],
    // odd spellings
    ["2130706433", "loopback"],
    ["0x7f.1", "loopback"],
    ["0xa9fea9fe", "link-local"],
    ["012.0.0.1", "private"],
    // IPv6
    ["::", "unspecified"],
    ["::1", "loopback"],
    ["fc00::1", "private"],
    ["fd12:3456::1", "private"],
    ["fe80::1", "link-local"],
    ["fe80::1%eth0", "link-local"],
    ["febf::1", "link-local"],
    ["fec0::1", "private"],
    ["ff02::1", "multicast"],
    ["2001:db8::1", "documentation"],
    ["3fff::1", "documentation"],
    ["2001::1", "reserved"],
    ["100::1", "reserved"],
    ["64:ff9b:1::1", "private"],
    ["::ffff:0:0:1", "reserved"],
    ["4000::1", "reserved"],
    ["2606:4700:4700::1111", "public"],
    ["2a00:1450:4001::200e", "public"],
    // IPv4 inside IPv6
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::ffff:10.0.0.1", "private"],
    ["::ffff:169.254.169.254", "link-local"],
    ["::ffff:0.0.0.0", "unspecified"],
    ["::ffff:8.8.8.8", "public"],
    ["::127.0.0.1", "loopback"],
    ["::10.0.0.1", "private"],
    ["::8.8.8.8", "reserved"],
    ["64:ff9b::127.0.0.1", "loopback"],
    ["64:ff9b::a9fe:a9fe", "link-local"],
    ["64:ff9b::8.8.8.8", "public"],
    ["2002:7f00:1::", "loopback"],
    ["2002:a00:1::1", "private"],
    ["2002:a9fe:a9fe::", "link-local"],
    ["2002:808:808::1", "public"],
  ])("%s is %s", (address, category) => {
    expect(classify(address)).toBe(category);
  });
});

describe("embeddedIPv4", () => {
  it.each([
    ["::ffff:1.2.3.4", "mapped", "1.2.3.4"],
    ["::1.2.3.4", "compatible", "1.2.3.4"],
    ["64:ff9b::1.2.3.4", "nat64", "1.2.3.4"],
    ["2002:102:304::", "6to4", "1.2.3.4"],
  ])("%s is %s %s", (address, kind, v4) => {
    const addr = parseIPv6(address)!;
    expect(embeddedIPv4(addr)).toMatchObject({ kind, ipv4: { text: v4 } });
  });

  it("none for :: and ::1 and ordinary addresses", () => {
    for (const a of ["::", "::1", "2001:db8::1", "fe80::1"]) expect(embeddedIPv4(parseIPv6(a)!)).toBeNull();
  });
});

describe("parseCidr / cidrContains", () => {
  it("parses v4 and v6 ranges and bare addresses", () => {
    expect(parseCidr("10.0.0.0/8")).toMatchObject({ family: 4, prefix: 8, text: "10.0.0.0/8" });
    expect(parseCidr(" 127.0.0.1 ")).toMatchObject({ family: 4, prefix: 32, text: "127.0.0.1/32" });
    expect(parseCidr("0.0.0.0/0").text).toBe("0.0.0.0/0");
    expect(parseCidr("FC00::/7")).toMatchObject({ family: 6, prefix: 7, text: "fc00::/7" });
    expect(parseCidr("::1")).toMatchObject({ family: 6, prefix: 128, text: "::1/128" });
    expect(parseCidr("::/0").text).toBe("::/0");
  });

  it.each([
    ["10.0.0.0/33", /prefix length must be a whole number from 0 to 32/],
    ["fc00::/129", /from 0 to 128/],
    ["10.0.0.0/", /prefix length/],
    ["10.0.0.0/08", /prefix length/],
    ["10.0.0.0/-1", /prefix length/],
    ["10.0.0.1/8", /host bits are set \(did you mean 10\.0\.0\.0\/8\?\)/],
    ["fc00::1/7", /did you mean fc00::\/7/],
    ["10.0.0/8", /"10.0.0" is not an IPv4/],
    ["0x0a.0.0.0/8", /is not an IPv4/],
    ["010.0.0.0/8", /is not an IPv4/],
    ["fe80::%eth0/10", /zone id/],
    ["example.com/24", /is not an IPv4/],
    ["", /is not an IPv4/],
  ])("rejects %j", (value, message) => {
    const attempt = () => parseCidr(value);
    expect(attempt).toThrow(InvalidCidrError);
    expect(attempt).toThrow(message);
    expect(attempt).toThrow(`invalid CIDR ${JSON.stringify(value)}`);
  });

  it.each([
    ["10.0.0.0/8", "10.0.0.0", true],
    ["10.0.0.0/8", "10.255.255.255", true],
    ["10.0.0.0/8", "11.0.0.0", false],
    ["172.16.0.0/12", "172.31.0.1", true],
    ["172.16.0.0/12", "172.32.0.1", false],
    ["127.0.0.1/32", "127.0.0.1", true],
    ["127.0.0.1/32", "127.0.0.2", false],
    ["0.0.0.0/0", "203.0.113.1", true],
    ["fc00::/7", "fdff::1", true],
    ["fc00::/7", "fe00::1", false],
    ["2001:db8::/32", "2001:db8:ffff::1", true],
    ["2001:db8::/32", "2001:db9::1", false],
    ["::/0", "2606:4700::1", true],
    ["::1/128", "::1", true],
    // families never cross, even for mapped addresses (the policy handles those explicitly)
    ["127.0.0.0/8", "::ffff:127.0.0.1", false],
    ["::ffff:0:0/96", "127.0.0.1", false],
    ["::ffff:0:0/96", "::ffff:127.0.0.1", true],
  ])("%s contains %s: %s", (cidr, address, expected) => {
    expect(cidrContains(parseCidr(cidr), parseIp(address)!)).toBe(expected);
  });
});
