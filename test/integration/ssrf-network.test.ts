// Real sockets, loopback only. Every address any test hands to net is in 127.0.0.0/8 or is
// ::ffff:127.0.0.1, so even a broken guard cannot send a packet anywhere else: 127.0.0.1 plays
// the internal service the guard must protect, 127.0.0.2 (opened with allowed-cidrs) the public
// receiver.
import type { LookupAddress } from "node:dns";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Agent, request } from "undici";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type GuardedConnectOptions,
  type LookupFn,
  SsrfBlockedError,
  createGuardedConnect,
  isSsrfBlockedError,
} from "../../src/delivery/ssrf/guarded-connector.js";
import { type NetworkPolicyOptions, createNetworkPolicy } from "../../src/delivery/ssrf/network-policy.js";

interface Listener {
  server: Server;
  connections: number;
}

async function listen(host: string, port: number): Promise<Listener> {
  const listener: Listener = { server: createServer((_req, res) => res.end(`hello from ${host}`)), connections: 0 };
  listener.server.on("connection", () => {
    listener.connections++;
  });
  await new Promise<void>((resolve, reject) => {
    listener.server.once("error", reject);
    listener.server.listen(port, host, () => resolve());
  });
  return listener;
}

let internal: Listener; // 127.0.0.1:PORT
let receiver: Listener; // 127.0.0.2:PORT, same port so a rebinding swap only changes the address
let port: number;

beforeAll(async () => {
  internal = await listen("127.0.0.1", 0);
  port = (internal.server.address() as AddressInfo).port;
  receiver = await listen("127.0.0.2", port);
});

afterAll(async () => {
  await Promise.all([internal, receiver].map((l) => new Promise((resolve) => l.server.close(resolve))));
});

beforeEach(() => {
  internal.connections = 0;
  receiver.connections = 0;
});

const agents: Agent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.destroy()));
});

function agentFor(policy: NetworkPolicyOptions, options: GuardedConnectOptions = {}): Agent {
  const agent = new Agent({ connect: createGuardedConnect(createNetworkPolicy(policy), options) });
  agents.push(agent);
  return agent;
}

/** Injected resolver: one answer list per call (the last repeats). Loopback answers only. */
function scriptedLookup(...script: string[][]): LookupFn & { calls: number } {
  for (const answer of script) {
    for (const a of answer) if (!a.startsWith("127.")) throw new Error(`test safety: ${a} is not loopback`);
  }
  const fn = ((_hostname, options, callback) => {
    const answer = script[Math.min(fn.calls, script.length - 1)] ?? [];
    fn.calls++;
    const entries: LookupAddress[] = answer.map((address) => ({ address, family: 4 }));
    setImmediate(() => (options.all ? callback(null, entries) : callback(null, entries[0]!.address, 4)));
  }) as LookupFn & { calls: number };
  fn.calls = 0;
  return fn;
}

async function get(agent: Agent, url: string): Promise<string> {
  // reset: close the connection after the response, so every request makes a new connection
  const res = await request(url, { dispatcher: agent, reset: true });
  return res.body.text();
}

async function refusal(agent: Agent, url: string): Promise<SsrfBlockedError> {
  const err = await get(agent, url).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SsrfBlockedError);
  expect(isSsrfBlockedError(err)).toBe(true);
  return err as SsrfBlockedError;
}

const DENY = { allowPrivateNetworks: false, allowedCidrs: [] };
const url = (host: string, scheme = "http") => `${scheme}://${host}:${port}/`;

describe("(a) a policy that denies loopback", () => {
  it("refuses http://127.0.0.1:PORT/ before connecting", async () => {
    const err = await refusal(agentFor(DENY), url("127.0.0.1"));
    expect(err.code).toBe("SSRF_BLOCKED");
    expect(err.message).toBe(
      "refusing to connect to 127.0.0.1: address 127.0.0.1 is loopback; " +
        "set pyfly.callbacks.http.allow-private-networks or add it to allowed-cidrs",
    );
    expect(internal.connections).toBe(0);
  });

  it("refuses https too, before any TLS or TCP traffic", async () => {
    await refusal(agentFor(DENY), url("127.0.0.1", "https"));
    expect(internal.connections).toBe(0);
  });
});

describe("(b) other spellings of the same host, and names resolving to it", () => {
  const spellings = ["2130706433", "0x7f.1", "0177.0.0.1", "127.1", "0x7f000001", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]"];

  it.each(spellings)("refuses http://%s:PORT/ with 0 connections", async (host) => {
    const err = await refusal(agentFor(DENY), url(host));
    expect(err.reason).toContain("127.0.0.1");
    expect(internal.connections).toBe(0);
  });

  it.each(spellings)("control: with private networks allowed, http://%s:PORT/ does reach the listener", async (host) => {
    expect(await get(agentFor({ allowPrivateNetworks: true, allowedCidrs: [] }), url(host))).toBe("hello from 127.0.0.1");
    expect(internal.connections).toBe(1);
  });

  it("refuses a name the resolver maps to 127.0.0.1 (both lookup shapes net uses)", async () => {
    for (const autoSelectFamily of [true, false]) {
      const lookup = scriptedLookup(["127.0.0.1"]);
      const err = await refusal(agentFor(DENY, { lookup, connectorOptions: { autoSelectFamily } }), url("internal.example"));
      expect(err).toMatchObject({ host: "internal.example", address: "127.0.0.1" });
      expect(lookup.calls).toBe(1);
    }
    expect(internal.connections).toBe(0);
  });

  it("DNS rebinding: each connection is judged on the address it actually dials", async () => {
    // First answer: the receiver (allowed). Every later answer: the internal service.
    const lookup = scriptedLookup(["127.0.0.2"], ["127.0.0.1"]);
    const agent = agentFor({ allowPrivateNetworks: false, allowedCidrs: ["127.0.0.2/32"] }, { lookup });

    expect(await get(agent, url("rebind.example"))).toBe("hello from 127.0.0.2");
    expect(receiver.connections).toBe(1);

    const err = await refusal(agent, url("rebind.example"));
    expect(err).toMatchObject({ host: "rebind.example", address: "127.0.0.1" });
    // One resolution per connection: nothing resolved once for a check and again for the connect.
    expect(lookup.calls).toBe(2);
    expect(internal.connections).toBe(0);
    expect(receiver.connections).toBe(1);
  });
});

describe("(c) opening loopback on purpose", () => {
  it("allowedCidrs 127.0.0.1/32: the request succeeds with one connection", async () => {
    const agent = agentFor({ allowPrivateNetworks: false, allowedCidrs: ["127.0.0.1/32"] });
    expect(await get(agent, url("127.0.0.1"))).toBe("hello from 127.0.0.1");
    expect(internal.connections).toBe(1);
  });

  it("allowedCidrs 127.0.0.1/32 also opens a name that resolves there, and only that address", async () => {
    const policy = { allowPrivateNetworks: false, allowedCidrs: ["127.0.0.1/32"] };
    expect(await get(agentFor(policy, { lookup: scriptedLookup(["127.0.0.1"]) }), url("hooks.example"))).toBe("hello from 127.0.0.1");
    await refusal(agentFor(policy, { lookup: scriptedLookup(["127.0.0.2"]) }), url("hooks.example"));
    expect(internal.connections).toBe(1);
    expect(receiver.connections).toBe(0);
  });

  it("allowPrivateNetworks: the request succeeds with one connection", async () => {
    expect(await get(agentFor({ allowPrivateNetworks: true, allowedCidrs: [] }), url("127.0.0.1"))).toBe("hello from 127.0.0.1");
    expect(internal.connections).toBe(1);
  });
});

describe("(d) a name with several addresses, one of them disallowed", () => {
  // Decision: refuse the name outright rather than filter the bad record out (see createGuardedLookup).
  it.each([[["127.0.0.2", "127.0.0.1"]], [["127.0.0.1", "127.0.0.2"]]])("answers %j: refused, nothing connected", async (answers) => {
    const lookup = scriptedLookup(answers);
    const agent = agentFor({ allowPrivateNetworks: false, allowedCidrs: ["127.0.0.2/32"] }, { lookup });
    const err = await refusal(agent, url("mixed.example"));
    expect(err.address).toBe("127.0.0.1");
    expect(internal.connections).toBe(0);
    expect(receiver.connections).toBe(0);
  });

  it("control: when every answer is allowed the same agent connects", async () => {
    const lookup = scriptedLookup(["127.0.0.2", "127.0.0.2"]);
    const agent = agentFor({ allowPrivateNetworks: false, allowedCidrs: ["127.0.0.2/32"] }, { lookup });
    expect(await get(agent, url("mixed.example"))).toBe("hello from 127.0.0.2");
    expect(receiver.connections).toBe(1);
  });
});
