/**
 * The real sender over real sockets on 127.0.0.1 (no broker), through a real CONNECT proxy and to
 * HTTPS receivers whose certificates come from test CAs made here with openssl: the SSRF guard
 * decides before the proxy is asked, proxy failures stay out of the target's breaker, and client
 * certificates (and their replacement on disk) work without a restart.
 */
import { copyFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BreakerRegistry } from "../../src/delivery/breaker.js";
import { createProxyRoute, type ProxySettings } from "../../src/delivery/proxy/proxy-route.js";
import { createHttpSender, type OutboundRequest, type Sender } from "../../src/delivery/sender.js";
import { createGuardedConnect, type LookupFn } from "../../src/delivery/ssrf/guarded-connector.js";
import { createNetworkPolicy } from "../../src/delivery/ssrf/network-policy.js";
import { TlsMaterial, tlsKeyOf } from "../../src/delivery/tls-material.js";
import type { ReceiverTls } from "../../src/domain/models.js";
import { startConnectProxy, type ConnectProxy } from "../support/connect-proxy.js";
import { startMtlsReceiver, type MtlsReceiver } from "../support/mtls-receiver.js";
import { refusedPort, startReceiver, type Receiver } from "../support/receiver.js";
import { createTestCa, type IssuedCertificate, type TestCa } from "../support/test-ca.js";

const THRESHOLD = 3;
const closers: { close(): unknown }[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c.close();
});

// Names the tests resolve themselves: the guard judges these answers, as it would DNS's.
const NAMES: Record<string, string> = {
  "receiver.test": "127.0.0.1",
  "internal.test": "127.0.0.2",
  "metadata.test": "169.254.169.254",
};
const lookup: LookupFn = (hostname, options, callback) => {
  const address = NAMES[hostname];
  if (address === undefined) return callback(Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: "ENOTFOUND" }), "", 4);
  if (options.all) return callback(null, [{ address, family: 4 }]);
  callback(null, address, 4);
};

interface Harness {
  sender: Sender;
  breakers: BreakerRegistry;
}

/** The sender as the engine wires it: 127.0.0.1 allowed by CIDR, everything else private refused. */
function harness(
  proxy: Partial<ProxySettings> | undefined,
  tls: { setting: ReceiverTls; material: TlsMaterial } | undefined = undefined,
): Harness {
  const breakers = new BreakerRegistry({ failureThreshold: THRESHOLD, recoveryTimeoutMs: 60_000 });
  const policy = createNetworkPolicy({ allowPrivateNetworks: false, allowedCidrs: ["127.0.0.1/32"] });
  const route = proxy === undefined ? undefined : createProxyRoute({ http: undefined, https: undefined, noProxy: [], ...proxy });
  const sender = createHttpSender({
    timeoutMs: 3_000,
    maxConnectionsPerHost: 4,
    breakers,
    connect: (options) =>
      createGuardedConnect(policy, { timeoutMs: 3_000, lookup, proxy: route, ...(options ? { connectorOptions: options } : {}) }),
    ...(tls ? { tlsMaterials: new Map([[tlsKeyOf(tls.setting), tls.material]]) } : {}),
  });
  closers.push(sender, { close: () => breakers.shutdown() });
  return { sender, breakers };
}

const post = (url: string, tls: ReceiverTls | null = null): OutboundRequest => ({
  url: new URL(url),
  headers: { "Content-Type": "application/json" },
  body: "{}",
  tls,
});

async function receiver(): Promise<Receiver> {
  const r = await startReceiver();
  closers.push(r);
  return r;
}

async function proxy(options: { credentials?: string } = {}): Promise<ConnectProxy> {
  const p = await startConnectProxy(options);
  closers.push(p);
  return p;
}

describe("egress proxy under the SSRF guard", () => {
  it("deliveries go through the proxy, which is asked to CONNECT to the checked address, not the name", async () => {
    const r = await receiver();
    const p = await proxy();
    const { sender } = harness({ http: p.url });
    const result = await sender.send(post(`http://receiver.test:${r.port}/hook`));
    expect(result.outcome).toEqual({ kind: "response", status: 200 });
    expect(p.connects).toEqual([`127.0.0.1:${r.port}`]);
    expect(r.requests).toHaveLength(1);
  });

  it("a target resolving to a loopback or metadata address is refused before the proxy is asked; the proxy itself may be on loopback", async () => {
    const r = await receiver();
    const p = await proxy();
    const { sender } = harness({ http: p.url });
    for (const url of [
      `http://internal.test:${r.port}/`,
      "http://metadata.test/latest/meta-data",
      `http://127.0.0.2:${r.port}/`,
      "http://169.254.169.254/",
    ]) {
      const result = await sender.send(post(url));
      expect(result.outcome, url).toMatchObject({ kind: "rejected", reason: "ssrf_blocked" });
    }
    expect(p.connects).toEqual([]);
  });

  it("NO_PROXY hosts, domains and ranges bypass the proxy", async () => {
    const r = await receiver();
    const p = await proxy();
    for (const noProxy of [["receiver.test"], [".test"], ["127.0.0.0/8"], [`127.0.0.1:${r.port}`], ["*"]]) {
      const { sender } = harness({ http: p.url, noProxy });
      const url = noProxy[0]!.startsWith("127") ? `http://127.0.0.1:${r.port}/` : `http://receiver.test:${r.port}/`;
      expect((await sender.send(post(url))).outcome, noProxy.join(",")).toEqual({ kind: "response", status: 200 });
    }
    expect(p.connects).toEqual([]);
    expect(r.requests).toHaveLength(5);
  });

  it("a proxy that refuses, asks for credentials or is down costs the target's breaker nothing: each attempt is a proxy_error", async () => {
    const r = await receiver();
    const refusing = await proxy();
    refusing.refuseWith = 502;
    const down = await refusedPort();
    const cases: [string, string][] = [
      [refusing.url, "refused"],
      [`http://127.0.0.1:${down}`, "unreachable"],
      [(await proxy({ credentials: "svc:right" })).url.replace("http://", "http://svc:wrong@"), "auth_required"],
    ];
    for (const [url, reason] of cases) {
      const { sender, breakers } = harness({ http: url });
      for (let i = 0; i < THRESHOLD + 2; i++) {
        const result = await sender.send(post(`http://receiver.test:${r.port}/`));
        expect(result.outcome, url).toMatchObject({ kind: "error", category: "proxy_error", reason });
      }
      expect(breakers.state(`receiver.test:${r.port}`), url).toBe("closed");
    }
    expect(r.requests).toHaveLength(0);
  });

  it("proxy credentials from the URL are sent as Basic authorization and never appear in an error", async () => {
    const r = await receiver();
    const p = await proxy({ credentials: "svc:s3cr%t" });
    const { sender } = harness({ http: p.url.replace("http://", "http://svc:s3cr%25t@") });
    expect((await sender.send(post(`http://receiver.test:${r.port}/`))).outcome).toEqual({ kind: "response", status: 200 });
    expect(p.authorizations).toEqual([`Basic ${Buffer.from("svc:s3cr%t").toString("base64")}`]);

    const refusing = await proxy({ credentials: "svc:other" });
    const { sender: wrong } = harness({ http: refusing.url.replace("http://", "http://svc:s3cr%25t@") });
    const failed = await wrong.send(post(`http://receiver.test:${r.port}/`));
    expect(JSON.stringify(failed)).not.toContain("s3cr");
  });
});

describe("TLS to receivers: client certificates, extra CAs, reload", () => {
  let caA: TestCa;
  let caB: TestCa;
  let clientA: IssuedCertificate;
  let clientB: IssuedCertificate;
  let mtls: MtlsReceiver;
  let port: number;

  beforeAll(async () => {
    caA = createTestCa("a");
    caB = createTestCa("b", caA.dir);
    const serverCert = caA.server("receiver", ["DNS:receiver.test", "IP:127.0.0.1"]);
    clientA = caA.client("sidecar");
    clientB = caB.client("sidecar");
    // Requires a client certificate from CA A; its own certificate is from CA A too (not a public root).
    mtls = await startMtlsReceiver(serverCert.certFile, serverCert.keyFile, caA.caFile);
    port = mtls.port;
  });
  afterAll(async () => {
    await mtls.close();
    caA.remove();
  });

  const setting = (cert: IssuedCertificate | undefined, ca = caA.caFile): ReceiverTls => ({
    client_cert_file: cert?.certFile ?? null,
    client_key_file: cert?.keyFile ?? null,
    ca_file: ca,
    min_version: "TLSv1.2",
  });
  const withMaterial = (tls: ReceiverTls, now?: () => number) =>
    harness(undefined, { setting: tls, material: new TlsMaterial(tls, undefined, now) });

  it("with the configured client certificate the delivery succeeds; the receiver's CA comes from ca-file", async () => {
    const tls = setting(clientA);
    const { sender } = withMaterial(tls);
    expect((await sender.send(post(`https://127.0.0.1:${port}/hook`, tls))).outcome).toEqual({ kind: "response", status: 200 });
    expect(mtls.requests.at(-1)).toEqual({ path: "/hook", cn: "sidecar" });
  });

  it("without a client certificate, or with one from another CA, the outcome is final and named, outside the breaker", async () => {
    for (const tls of [setting(undefined), setting(clientB)]) {
      const { sender, breakers } = withMaterial(tls);
      for (let i = 0; i < THRESHOLD + 1; i++) {
        const result = await sender.send(post(`https://127.0.0.1:${port}/hook`, tls));
        expect(result.outcome, JSON.stringify(result.outcome)).toMatchObject({ kind: "rejected", reason: "client_certificate_rejected" });
      }
      expect(breakers.state(`127.0.0.1:${port}`)).toBe("closed");
    }
  });

  it("replacing the certificate files on disk takes effect without a restart", async () => {
    // Files of its own, replaced the way a Secret update replaces them.
    const certFile = `${caA.dir}/rotating.crt`;
    const keyFile = `${caA.dir}/rotating.key`;
    copyFileSync(clientB.certFile, certFile);
    copyFileSync(clientB.keyFile, keyFile);
    const tls: ReceiverTls = { client_cert_file: certFile, client_key_file: keyFile, ca_file: caA.caFile, min_version: "TLSv1.2" };
    let clock = 0;
    const { sender } = withMaterial(tls, () => clock);
    const url = `https://127.0.0.1:${port}/hook`;
    expect((await sender.send(post(url, tls))).outcome).toMatchObject({ kind: "rejected", reason: "client_certificate_rejected" });

    copyFileSync(clientA.certFile, certFile);
    copyFileSync(clientA.keyFile, keyFile);
    clock += 1_000;
    expect((await sender.send(post(url, tls))).outcome).toEqual({ kind: "response", status: 200 });
    // Kept-alive connections from the previous material are not reused for the new one.
    copyFileSync(clientB.certFile, certFile);
    copyFileSync(clientB.keyFile, keyFile);
    clock += 1_000;
    expect((await sender.send(post(url, tls))).outcome).toMatchObject({ kind: "rejected", reason: "client_certificate_rejected" });
  });

  it("HTTPS through the proxy verifies the target's name over the tunnel", async () => {
    const p = await proxy();
    const tls = setting(clientA);
    const breakers = harness({ https: p.url }, { setting: tls, material: new TlsMaterial(tls) });
    const ok = await breakers.sender.send(post(`https://receiver.test:${port}/hook`, tls));
    expect(ok.outcome).toEqual({ kind: "response", status: 200 });
    expect(p.connects).toEqual([`127.0.0.1:${port}`]);
    // The same address under a name the certificate does not carry: TLS refuses it.
    NAMES["other.test"] = "127.0.0.1";
    const wrong = await breakers.sender.send(post(`https://other.test:${port}/hook`, tls));
    expect(wrong.outcome).toMatchObject({ kind: "error", category: "transport_error" });
    expect(JSON.stringify(wrong.outcome)).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID|altnames/i);
  });
});
