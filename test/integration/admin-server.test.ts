import { request } from "node:http";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDeliveryEngine, type DeliveryEngine } from "../../src/app/delivery-engine.js";
import { startAdminServer, type AdminServer } from "../../src/http/admin-server.js";
import { createLogger } from "../../src/observability/logger.js";
import { createMetrics } from "../../src/observability/metrics.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { settingsFrom } from "../support/settings.js";

const SECRET = "admin-test-secret-d41d8cd9";
const TOKEN = "admin-executions-token-7Hq2Lm9Xv4";
// A capability URL: both random parts must never leave the admin port.
const PATH_TOKEN = "T0K3N-4f9d2c81e7";
const QUERY_TOKEN = "q-8b1e5a09d3c6";
const logger = createLogger("silent");

let receiver: Receiver;
let engine: DeliveryEngine;
let server: AdminServer;
let ready = false;

interface Reply {
  status: number;
  type: string;
  body: string;
  allow?: string;
  challenge?: string;
}

function call(port: number, path: string, method = "GET", headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          type: String(res.headers["content-type"]),
          body: Buffer.concat(chunks).toString("utf8"),
          ...(res.headers.allow ? { allow: res.headers.allow } : {}),
          ...(res.headers["www-authenticate"] ? { challenge: res.headers["www-authenticate"] } : {}),
        }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

/** With the bearer token, as an operator would call it. */
const get = (path: string, method = "GET") => call(server.port, path, method, { Authorization: `Bearer ${TOKEN}` });

beforeAll(async () => {
  receiver = await startReceiver();
  // The receiver refuses "/fail", so the store holds both DELIVERED and FAILED executions.
  receiver.behave((req) => ({ kind: "respond", status: req.url === "/fail" ? 400 : 200 }));
  const settings = settingsFrom({
    http: { "allow-private-networks": true },
    configs: [
      {
        "tenant-id": "acme",
        name: "main",
        secret: SECRET,
        "backoff-ms": 1,
        subscriptions: [
          { "event-type": "OrderPlaced", "target-url": `${receiver.url}/ok`, headers: { Authorization: "Bearer not-for-admin" } },
          { "event-type": "OrderFailed", "target-url": `${receiver.url}/fail` },
          { "event-type": "Capability", "target-url": `${receiver.url}/hooks/${PATH_TOKEN}?token=${QUERY_TOKEN}` },
        ],
      },
      { "tenant-id": "globex", name: "main", secret: SECRET, subscriptions: [{ "event-type": "*", "target-url": `${receiver.url}/ok` }] },
    ],
  });
  const metrics = createMetrics();
  engine = createDeliveryEngine(settings, logger, metrics);
  await engine.dispatcher.dispatch("acme", "OrderPlaced", { n: 1 });
  await engine.dispatcher.dispatch("acme", "OrderFailed", { n: 2 });
  await engine.dispatcher.dispatch("globex", "Anything", { n: 3 });
  await engine.dispatcher.dispatch("acme", "OrderPlaced", { n: 4 });
  server = await startAdminServer({
    host: "127.0.0.1",
    port: 0,
    registry: metrics.registry,
    executions: engine.executions,
    isReady: () => ready,
    logger,
    executionsEndpoint: { enabled: true, token: TOKEN, includePayloads: true },
  });
});

afterAll(async () => {
  await server?.close();
  await engine?.close();
  await receiver?.close();
});

describe("admin server", () => {
  it("listens on the port it picked for port 0", () => {
    expect(server.port).toBeGreaterThan(0);
  });

  it("/healthz answers 200 ok", async () => {
    expect(await get("/healthz")).toMatchObject({ status: 200, body: "ok\n" });
  });

  it("/readyz follows isReady", async () => {
    ready = false;
    const notReady = await get("/readyz");
    expect(notReady.status).toBe(503);
    expect(JSON.parse(notReady.body)).toMatchObject({ status: "not ready", reason: expect.any(String) });
    ready = true;
    expect(await get("/readyz")).toMatchObject({ status: 200 });
    ready = false;
    expect((await get("/readyz")).status).toBe(503);
  });

  it("/metrics serves the registry in the Prometheus text format", async () => {
    const res = await get("/metrics");
    expect(res.status).toBe(200);
    expect(res.type).toContain("text/plain");
    expect(res.body).toContain("# TYPE callbacks_deliveries_total counter");
    expect(res.body).toContain('callbacks_deliveries_total{tenant="acme",event_type="OrderPlaced",status="DELIVERED"} 2');
    expect(res.body).toContain("process_cpu_user_seconds_total");
  });

  it("/executions lists newest first, filtered by tenant and status, limited", async () => {
    const all = await get("/executions");
    expect(all.status).toBe(200);
    expect(all.type).toContain("application/json");
    const list = JSON.parse(all.body) as { tenant_id: string; status: string; payload: { n: number } }[];
    expect(list.map((e) => e.payload.n)).toEqual([4, 3, 2, 1]);

    const acme = JSON.parse((await get("/executions?tenant=acme&status=DELIVERED")).body) as typeof list;
    expect(acme.map((e) => e.payload.n)).toEqual([4, 1]);
    const failed = JSON.parse((await get("/executions?status=FAILED")).body) as typeof list;
    expect(failed.map((e) => [e.tenant_id, e.payload.n])).toEqual([["acme", 2]]);
    const limited = JSON.parse((await get("/executions?limit=1&tenant=")).body) as typeof list;
    expect(limited.map((e) => e.payload.n)).toEqual([4]);
    expect(JSON.parse((await get("/executions?tenant=nobody")).body)).toEqual([]);
  });

  it("/executions serialises execution fields only: no secret, signature or subscription header", async () => {
    const body = (await get("/executions")).body;
    const [first] = JSON.parse(body) as Record<string, unknown>[];
    expect(Object.keys(first!).sort()).toEqual(
      [
        "attempts",
        "config_id",
        "created_at",
        "delivered_at",
        "delivery_id",
        "duration_ms",
        "event_type",
        "id",
        "last_error",
        "payload",
        "response_status",
        "source",
        "status",
        "target_url",
        "tenant_id",
      ].sort(),
    );
    expect(body).not.toContain(SECRET);
    expect(body).not.toContain("not-for-admin");
    const sent = receiver.requests.map((r) => String(r.headers["x-pyfly-signature"]));
    expect(sent.length).toBeGreaterThan(0);
    for (const signature of sent) {
      expect(body).not.toContain(signature);
      expect(body).not.toContain(signature.slice("sha256=".length));
    }
  });

  it.each([
    ["/executions?status=DONE", "status"],
    ["/executions?status=delivered", "status"],
    ["/executions?limit=0", "limit"],
    ["/executions?limit=1001", "limit"],
    ["/executions?limit=ten", "limit"],
    ["/executions?limit=1.5", "limit"],
    ["/executions?tenantt=acme", "tenantt"],
    ["/executions?tenant=a&tenant=b", "tenant"],
  ])("%s is a 400 naming %s", async (path, parameter) => {
    const res = await get(path);
    expect(res.status).toBe(400);
    expect((JSON.parse(res.body) as { error: string }).error).toContain(`"${parameter}"`);
  });

  it("accepts the limit bounds 1 and 1000", async () => {
    expect((await get("/executions?limit=1")).status).toBe(200);
    expect((await get("/executions?limit=1000")).status).toBe(200);
  });

  it("/executions needs the bearer token: 401 with a challenge without it or with a wrong one", async () => {
    const none = await call(server.port, "/executions");
    expect(none.status).toBe(401);
    expect(none.challenge).toBe('Bearer realm="callback-sidecar"');
    expect(none.body).not.toContain("acme");
    for (const authorization of [
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      "Bearer ",
      `Basic ${TOKEN}`,
      TOKEN,
      `Bearer ${TOKEN} extra`,
    ]) {
      const wrong = await call(server.port, "/executions?status=FAILED", "GET", { Authorization: authorization });
      expect(wrong.status, authorization).toBe(401);
      expect(wrong.challenge, authorization).toMatch(/^Bearer realm="callback-sidecar"/);
    }
    expect((await call(server.port, "/executions", "GET", { Authorization: `Bearer ${TOKEN.slice(0, -1)}Z` })).challenge).toContain(
      'error="invalid_token"',
    );
    // The scheme is case-insensitive (RFC 7235); the token is not.
    expect((await call(server.port, "/executions", "GET", { Authorization: `bearer ${TOKEN}` })).status).toBe(200);
    expect((await call(server.port, "/executions", "GET", { Authorization: `Bearer ${TOKEN.toUpperCase()}` })).status).toBe(401);
    // A bad query from an unauthenticated caller learns nothing about the parameters either.
    expect((await call(server.port, "/executions?limit=0")).status).toBe(401);
  });

  it("/metrics, /healthz and /readyz stay open without a token", async () => {
    for (const path of ["/metrics", "/healthz"]) expect((await call(server.port, path)).status, path).toBe(200);
    expect([200, 503]).toContain((await call(server.port, "/readyz")).status);
  });

  it("/executions redacts target URLs: neither the path nor the query token leaves, on any route", async () => {
    await engine.dispatcher.dispatch("acme", "Capability", { n: 5 });
    const body = (await get("/executions?limit=1000")).body;
    const mine = (JSON.parse(body) as { event_type: string; target_url: string }[]).filter((e) => e.event_type === "Capability");
    expect(mine.length).toBeGreaterThan(0);
    for (const e of mine) expect(e.target_url).toBe(`${receiver.url}/…`);
    for (const path of ["/executions?limit=1000", "/metrics", "/readyz", "/healthz"]) {
      const out = (await get(path)).body;
      expect(out, path).not.toContain(PATH_TOKEN);
      expect(out, path).not.toContain(QUERY_TOKEN);
    }
  });

  it("leaves payloads out unless include-payloads is set", async () => {
    const metrics = createMetrics();
    const other = await startAdminServer({
      host: "127.0.0.1",
      port: 0,
      registry: metrics.registry,
      executions: engine.executions,
      isReady: () => true,
      logger,
      executionsEndpoint: { enabled: true, token: TOKEN, includePayloads: false },
    });
    try {
      const res = await call(other.port, "/executions", "GET", { Authorization: `Bearer ${TOKEN}` });
      expect(res.status).toBe(200);
      const list = JSON.parse(res.body) as Record<string, unknown>[];
      expect(list.length).toBeGreaterThan(0);
      for (const e of list) expect(e).not.toHaveProperty("payload");
      expect(res.body).not.toContain('"n":');
    } finally {
      await other.close();
    }
  });

  it("/executions does not exist when disabled (the default): 404 with or without a token", async () => {
    const metrics = createMetrics();
    for (const executionsEndpoint of [undefined, { enabled: false, token: TOKEN, includePayloads: true }]) {
      const other = await startAdminServer({
        host: "127.0.0.1",
        port: 0,
        registry: metrics.registry,
        executions: engine.executions,
        isReady: () => true,
        logger,
        ...(executionsEndpoint ? { executionsEndpoint } : {}),
      });
      try {
        for (const headers of [{}, { Authorization: `Bearer ${TOKEN}` }] as Record<string, string>[]) {
          const res = await call(other.port, "/executions", "GET", headers);
          expect(res.status).toBe(404);
          expect(res.body).toBe(JSON.stringify({ error: "no route /executions" }));
        }
        expect((await call(other.port, "/metrics")).status).toBe(200);
      } finally {
        await other.close();
      }
    }
  });

  it("refuses to start with /executions enabled and no token", async () => {
    const metrics = createMetrics();
    await expect(
      startAdminServer({
        host: "127.0.0.1",
        port: 0,
        registry: metrics.registry,
        executions: engine.executions,
        isReady: () => true,
        logger,
        executionsEndpoint: { enabled: true, token: undefined, includePayloads: false },
      }),
    ).rejects.toThrow(/without a token/);
  });

  it("unknown paths are 404, other methods 405", async () => {
    expect((await get("/nope")).status).toBe(404);
    expect((await get("/")).status).toBe(404);
    const post = await get("/executions", "POST");
    expect(post.status).toBe(405);
    expect(post.allow).toBe("GET, HEAD");
    expect((await get("/metrics", "DELETE")).status).toBe(405);
    expect(await get("/healthz", "HEAD")).toMatchObject({ status: 200, body: "" });
  });

  it("close() ends the connections still open: a kept-alive one, and one whose request is still arriving", async () => {
    const metrics = createMetrics();
    const other = await startAdminServer({
      host: "127.0.0.1",
      port: 0,
      registry: metrics.registry,
      executions: engine.executions,
      isReady: () => true,
      logger,
    });
    const { Agent } = await import("node:http");
    const { connect } = await import("node:net");
    const agent = new Agent({ keepAlive: true });
    let kept: Socket | undefined;
    await new Promise<void>((resolve, reject) =>
      request({ host: "127.0.0.1", port: other.port, path: "/healthz", agent }, (res) => res.resume().on("end", resolve))
        .on("socket", (socket) => (kept = socket))
        .on("error", reject)
        .end(),
    );
    // A client still sending its request body: it has its answer, so the server has read the
    // request, but the request is not over, and server.close() alone would wait for the rest.
    const arriving = connect(other.port, "127.0.0.1");
    arriving.on("error", () => undefined);
    await new Promise<void>((resolve) => arriving.once("connect", resolve));
    const answered = new Promise<string>((resolve) => arriving.once("data", (data: Buffer) => resolve(data.toString("latin1"))));
    arriving.write("GET /healthz HTTP/1.1\r\nHost: admin\r\nContent-Length: 100\r\n\r\npartial");
    expect(await answered).toMatch(/^HTTP\/1\.1 200 /);
    const closed = [kept!, arriving].map((socket) => new Promise<void>((resolve) => socket.once("close", () => resolve())));
    // Resolves only once every connection is gone: with one left open it would hang (and the test time out).
    await other.close();
    await Promise.all(closed);
    agent.destroy();
  });
});
