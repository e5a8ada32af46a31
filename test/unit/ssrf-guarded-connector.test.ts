// No sockets here: the underlying undici connector is replaced through `connectorFactory` by a
// fake that only records what it would dial, so even a broken guard cannot send a packet.
import type { LookupAddress, LookupOptions } from "node:dns";
import type { Socket } from "node:net";
import { describe, expect, it } from "vitest";
import type { buildConnector } from "undici";
import {
  type Connector,
  type LookupFn,
  SsrfBlockedError,
  createGuardedConnect,
  createGuardedLookup,
  isSsrfBlockedError,
} from "../../src/delivery/ssrf/guarded-connector.js";
import { createNetworkPolicy } from "../../src/delivery/ssrf/network-policy.js";

const strict = createNetworkPolicy({ allowPrivateNetworks: false, allowedCidrs: [] });

/** A resolver answering from a script, one answer list per call (the last one repeats). */
function scriptedLookup(...script: string[][]): LookupFn & { calls: string[] } {
  const calls: string[] = [];
  const fn = ((hostname: string, options: LookupOptions, callback: Parameters<LookupFn>[2]) => {
    const answer = script[Math.min(calls.length, script.length - 1)] ?? [];
    calls.push(hostname);
    const entries: LookupAddress[] = answer.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
    setImmediate(() => {
      if (options.all) callback(null, entries);
      else callback(null, entries[0]?.address ?? "", entries[0]?.family);
    });
  }) as LookupFn & { calls: string[] };
  fn.calls = calls;
  return fn;
}

function lookupOnce(lookup: LookupFn, host: string, options: LookupOptions) {
  return new Promise<{ err: NodeJS.ErrnoException | null; address: string | LookupAddress[]; family?: number }>((resolve) =>
    lookup(host, options, (err, address, family) => resolve({ err, address, family })),
  );
}

/** Stands in for undici's buildConnector: resolves through the given lookup like net does, then "dials". */
function fakeFactory(opts: { remoteAddress?: (dialled: string) => string } = {}) {
  const state = {
    buildOptions: undefined as buildConnector.BuildOptions | undefined,
    dialled: [] as string[],
    destroyed: 0,
    connectorCalls: 0,
  };
  const factory = (buildOptions: buildConnector.BuildOptions): Connector => {
    state.buildOptions = buildOptions;
    return (connectOptions, callback) => {
      state.connectorCalls++;
      const dial = (address: string) => {
        state.dialled.push(address);
        const socket = {
          remoteAddress: opts.remoteAddress ? opts.remoteAddress(address) : address,
          destroy: () => {
            state.destroyed++;
          },
        } as unknown as Socket;
        callback(null, socket);
      };
      const lookup = (buildOptions as { lookup?: LookupFn }).lookup;
      if (/^[0-9.]+$|:/.test(connectOptions.hostname) || lookup === undefined) {
        setImmediate(() => dial(connectOptions.hostname));
        return;
      }
      lookup(connectOptions.hostname, { all: true }, (err, addresses) => {
        if (err) callback(err, null);
        else dial((addresses as LookupAddress[])[0]!.address);
      });
    };
  };
  return { factory, state };
}

function connectOnce(connect: Connector, hostname: string) {
  return new Promise<{ err: Error | null; socket: Socket | null }>((resolve) =>
    connect({ hostname, host: hostname, protocol: "http:", port: "80" }, (err, socket) =>
      resolve({ err, socket: socket as Socket | null }),
    ),
  );
}

describe("createGuardedLookup", () => {
  it("passes allowed answers through unchanged, in both answer shapes", async () => {
    const guarded = createGuardedLookup(strict, scriptedLookup(["93.184.216.34", "2606:4700::1"]));
    expect(await lookupOnce(guarded, "ok.example", { all: true })).toEqual({
      err: null,
      address: [
        { address: "93.184.216.34", family: 4 },
        { address: "2606:4700::1", family: 6 },
      ],
      family: undefined,
    });
    expect(await lookupOnce(guarded, "ok.example", {})).toEqual({ err: null, address: "93.184.216.34", family: 4 });
  });

  it("refuses the whole name when any answer is disallowed (not filtered)", async () => {
    const guarded = createGuardedLookup(strict, scriptedLookup(["93.184.216.34", "10.0.0.1"]));
    const { err, address } = await lookupOnce(guarded, "mixed.example", { all: true });
    expect(err).toBeInstanceOf(SsrfBlockedError);
    expect(err).toMatchObject({ code: "SSRF_BLOCKED", host: "mixed.example", address: "10.0.0.1" });
    expect(err?.message).toBe(
      "refusing to connect to mixed.example (10.0.0.1): address 10.0.0.1 is private; " +
        "set pyfly.callbacks.http.allow-private-networks or add it to allowed-cidrs",
    );
    expect(address).toEqual([]);
  });

  it("refuses a single-answer lookup of the metadata address", async () => {
    const guarded = createGuardedLookup(strict, scriptedLookup(["169.254.169.254"]));
    const { err } = await lookupOnce(guarded, "metadata.example", {});
    expect(err).toMatchObject({ address: "169.254.169.254", reason: expect.stringContaining("is link-local") });
  });

  it("passes resolver errors through untouched", async () => {
    const failure = Object.assign(new Error("getaddrinfo ENOTFOUND nope.example"), { code: "ENOTFOUND" });
    const failing: LookupFn = (_h, _o, cb) => setImmediate(() => cb(failure, ""));
    const { err } = await lookupOnce(createGuardedLookup(strict, failing), "nope.example", {});
    expect(err).toBe(failure);
  });
});

describe("createGuardedConnect", () => {
  it.each(["10.0.0.1", "127.0.0.1", "0x7f.1", "2130706433", "169.254.169.254", "::ffff:a9fe:a9fe", "::1", "fe80::1%eth0", "0.0.0.0"])(
    "refuses the literal %s without calling the connector",
    async (host) => {
      const { factory, state } = fakeFactory();
      const { err, socket } = await connectOnce(createGuardedConnect(strict, { connectorFactory: factory }), host);
      expect(err).toBeInstanceOf(SsrfBlockedError);
      expect(err?.message).toMatch(/^refusing to connect to /);
      expect(socket).toBeNull();
      expect(state.connectorCalls).toBe(0);
      expect(state.dialled).toEqual([]);
    },
  );

  it("plugs the guarded lookup into the connector, so names are judged on the answer net dials", async () => {
    const lookup = scriptedLookup(["10.0.0.1"]);
    const { factory, state } = fakeFactory();
    const { err } = await connectOnce(createGuardedConnect(strict, { lookup, connectorFactory: factory }), "evil.example");
    expect(err).toMatchObject({ host: "evil.example", address: "10.0.0.1" });
    expect(lookup.calls).toEqual(["evil.example"]);
    expect(state.dialled).toEqual([]);
  });

  it("DNS rebinding: one resolution per connection, and the address judged is the address dialled", async () => {
    // First answer public, every later one private: a check-then-connect guard that resolved
    // twice would pass on the first and dial the second.
    const lookup = scriptedLookup(["93.184.216.34"], ["10.0.0.1"]);
    const { factory, state } = fakeFactory();
    const connect = createGuardedConnect(strict, { lookup, connectorFactory: factory });

    const first = await connectOnce(connect, "rebind.example");
    expect(first.err).toBeNull();
    expect(state.dialled).toEqual(["93.184.216.34"]);
    expect(lookup.calls).toHaveLength(1);

    const second = await connectOnce(connect, "rebind.example");
    expect(second.err).toMatchObject({ address: "10.0.0.1" });
    expect(state.dialled).toEqual(["93.184.216.34"]);
    expect(lookup.calls).toHaveLength(2);
  });

  it("backstop: destroys a socket whose peer address the policy refuses", async () => {
    const { factory, state } = fakeFactory({ remoteAddress: () => "::ffff:10.0.0.1" });
    const { err } = await connectOnce(createGuardedConnect(strict, { connectorFactory: factory }), "93.184.216.34");
    expect(err).toMatchObject({ host: "93.184.216.34", address: "::ffff:10.0.0.1" });
    expect(state.destroyed).toBe(1);
  });

  it("allowed literals and names reach the connector and come back as the socket", async () => {
    const { factory, state } = fakeFactory();
    const connect = createGuardedConnect(strict, { lookup: scriptedLookup(["8.8.4.4"]), connectorFactory: factory });
    expect((await connectOnce(connect, "93.184.216.34")).socket?.remoteAddress).toBe("93.184.216.34");
    expect((await connectOnce(connect, "ok.example")).socket?.remoteAddress).toBe("8.8.4.4");
    expect(state.dialled).toEqual(["93.184.216.34", "8.8.4.4"]);
  });

  it("passes timeout and connector options through, keeping lookup for itself", () => {
    const { factory, state } = fakeFactory();
    createGuardedConnect(strict, {
      timeoutMs: 1234,
      connectorOptions: { keepAlive: true, rejectUnauthorized: true },
      connectorFactory: factory,
    });
    expect(state.buildOptions).toMatchObject({ timeout: 1234, keepAlive: true, rejectUnauthorized: true });
    expect(typeof (state.buildOptions as { lookup?: unknown }).lookup).toBe("function");
  });

  it("an allow-everything policy gets the plain connector: no guard, default lookup", async () => {
    const { factory, state } = fakeFactory();
    const open = createNetworkPolicy({ allowPrivateNetworks: true, allowedCidrs: [] });
    const connect = createGuardedConnect(open, { connectorFactory: factory });
    expect((state.buildOptions as { lookup?: unknown }).lookup).toBeUndefined();
    expect((await connectOnce(connect, "127.0.0.1")).err).toBeNull();
  });
});

describe("isSsrfBlockedError", () => {
  const blocked = new SsrfBlockedError("h", "10.0.0.1", "r");

  it("recognises the error, a wrapped one, and the bare code", () => {
    expect(isSsrfBlockedError(blocked)).toBe(true);
    expect(isSsrfBlockedError(new Error("wrapped", { cause: new Error("again", { cause: blocked }) }))).toBe(true);
    expect(isSsrfBlockedError(Object.assign(new Error("x"), { code: "SSRF_BLOCKED" }))).toBe(true);
    expect(blocked.name).toBe("SsrfBlockedError");
    expect(blocked).toBeInstanceOf(Error);
  });

  it("is false for transport errors and non-errors", () => {
    expect(isSsrfBlockedError(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }))).toBe(false);
    expect(isSsrfBlockedError(null)).toBe(false);
    expect(isSsrfBlockedError("SSRF_BLOCKED")).toBe(false);
  });
});
