/*
 * The network guard against public addresses, with real sockets. Runs only inside a network
 * namespace with no route anywhere (see test/integration/ssrf-netns.test.ts), and checks that
 * first: an address the guard lets through then fails in the kernel (ENETUNREACH, or EADDRNOTAVAIL
 * for IPv6), so no packet can leave the machine whatever the guard does.
 */
import { readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LookupFn, createGuardedConnect, isSsrfBlockedError } from "../../src/delivery/ssrf/guarded-connector.js";
import { createNetworkPolicy } from "../../src/delivery/ssrf/network-policy.js";

// A route out needs a device other than lo; the kernel's own unreachable entries sit on lo.
const routesOffLoopback = (file: string, deviceOf: (fields: string[]) => string | undefined): string[][] => {
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return []; // no IPv6 in this kernel: nothing can be routed over it either
  }
  return text
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields.length > 1 && fields[0] !== "Iface" && deviceOf(fields) !== "lo");
};

function assertIsolated(): void {
  const interfaces = Object.keys(networkInterfaces()).filter((name) => name !== "lo");
  const v4Routes = routesOffLoopback("/proc/net/route", (f) => f[0]);
  const v6Routes = routesOffLoopback("/proc/net/ipv6_route", (f) => f[f.length - 1]);
  if (process.env.CALLBACK_SIDECAR_NETNS !== "1" || interfaces.length > 0 || v4Routes.length > 0 || v6Routes.length > 0) {
    throw new Error(
      `refusing to run: not inside an isolated network namespace (interfaces ${interfaces.join(",") || "-"}, ${v4Routes.length} IPv4 and ${v6Routes.length} IPv6 routes)`,
    );
  }
}

const agents: Agent[] = [];
beforeAll(() => assertIsolated());
afterAll(async () => {
  await Promise.all(agents.map((a) => a.destroy()));
});

/** Injected resolver: every name answers `address`, as a hostile or a legitimate DNS might. */
const resolvingTo =
  (address: string): LookupFn =>
  (_hostname, options, callback) => {
    const family = address.includes(":") ? 6 : 4;
    setImmediate(() => (options.all ? callback(null, [{ address, family }]) : callback(null, address, family)));
  };

async function attempt(url: string, lookup?: LookupFn): Promise<unknown> {
  const agent = new Agent({
    connect: createGuardedConnect(
      createNetworkPolicy({ allowPrivateNetworks: false, allowedCidrs: [] }),
      lookup ? { lookup, timeoutMs: 5_000 } : { timeoutMs: 5_000 },
    ),
  });
  agents.push(agent);
  try {
    await request(url, { dispatcher: agent, method: "POST", body: "{}" });
  } catch (error) {
    return error;
  }
  throw new Error(`${url}: a request succeeded inside a namespace without routes`);
}

const errno = (error: unknown) => (error as { code?: string }).code;
// What the kernel answers a connect with no route (IPv4) or no source address (IPv6) to use.
const KERNEL_REFUSALS = ["ENETUNREACH", "EADDRNOTAVAIL"];

describe("inside a network namespace without routes", () => {
  it.each([
    "http://168.63.129.16/",
    "http://168.63.129.16:32526/vmSettings",
    "http://[::ffff:168.63.129.16]/",
    "http://2822734096/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.100.100.200/",
    "http://[fd00:ec2::254]/",
  ])("%s is refused by the guard before any socket opens", async (url) => {
    const error = await attempt(url);
    expect(isSsrfBlockedError(error), String(error)).toBe(true);
  });

  it("a name resolving to the Azure WireServer address is refused too", async () => {
    const error = await attempt("https://wireserver.example/machine?comp=goalstate", resolvingTo("168.63.129.16"));
    expect(isSsrfBlockedError(error), String(error)).toBe(true);
    expect(String((error as Error).message)).toContain("cloud metadata endpoint");
  });

  it.each([
    "http://1.1.1.1/",
    "http://8.8.8.8/hook",
    "https://93.184.216.34/",
    "http://168.63.129.17/",
    "http://[2606:4700:4700::1111]/",
    "http://[::ffff:8.8.8.8]/",
  ])("%s passes the guard and fails in the kernel (no route): a public address is really dialled", async (url) => {
    const error = await attempt(url);
    expect(isSsrfBlockedError(error), String(error)).toBe(false);
    expect(KERNEL_REFUSALS, String(error)).toContain(errno(error));
  });

  it("a name resolving to a public address is dialled the same way", async () => {
    const error = await attempt("https://hooks.example/in", resolvingTo("93.184.216.34"));
    expect(isSsrfBlockedError(error)).toBe(false);
    expect(KERNEL_REFUSALS, String(error)).toContain(errno(error));
  });
});
