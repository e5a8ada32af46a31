import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDeliveryEngine, type DeliveryEngine } from "../../src/delivery/engine.js";
import { startAdminServer, type AdminServer } from "../../src/http/admin-server.js";
import { createLogger } from "../../src/observability/logger.js";
import { createMetrics } from "../../src/observability/metrics.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { settingsFrom } from "../support/settings.js";

const SECRET = "admin-test-secret-d41d8cd9";
const logger = createLogger("silent");

let receiver: Receiver;
let engine: DeliveryEngine;
let server: AdminServer;
let ready = false;

async function get(path: string, method = "GET"): Promise<{ status: number; type: string; body: string; allow?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: server.port, path, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          type: String(res.headers["content-type"]),
          body: Buffer.concat(chunks).toString("utf8"),
          ...(res.headers.allow ? { allow: res.headers.allow } : {}),
        }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

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
  server = await startAdminServer({ host: "127.0.0.1", port: 0, registry: metrics.registry, executions: engine.executions, isReady: () => ready, logger });
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
        "attempts", "config_id", "created_at", "delivered_at", "delivery_id", "duration_ms", "event_type", "id",
        "last_error", "payload", "response_status", "source", "status", "target_url", "tenant_id",
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

  it("unknown paths are 404, other methods 405", async () => {
    expect((await get("/nope")).status).toBe(404);
    expect((await get("/")).status).toBe(404);
    const post = await get("/executions", "POST");
    expect(post.status).toBe(405);
    expect(post.allow).toBe("GET, HEAD");
    expect((await get("/metrics", "DELETE")).status).toBe(405);
    expect(await get("/healthz", "HEAD")).toMatchObject({ status: 200, body: "" });
  });

  it("close() returns promptly even with a keep-alive connection open", async () => {
    const metrics = createMetrics();
    const other = await startAdminServer({ host: "127.0.0.1", port: 0, registry: metrics.registry, executions: engine.executions, isReady: () => true, logger });
    const { Agent } = await import("node:http");
    const agent = new Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) =>
      request({ host: "127.0.0.1", port: other.port, path: "/healthz", agent }, (res) => res.resume().on("end", resolve)).on("error", reject).end(),
    );
    const started = Date.now();
    await other.close();
    expect(Date.now() - started).toBeLessThan(1000);
    agent.destroy();
  });
});
