#!/usr/bin/env node
// A webhook receiver as a customer would write one: it verifies the signature over the raw body
// (pyfly's X-Pyfly-Signature, or Standard Webhooks), deduplicates by delivery id, and prints
// each delivery. Used by `npm run demo` and deploy/docker-compose.yml.
//   HOST (default 127.0.0.1), PORT (default 9000), PYFLY_SECRET (pyfly scheme), WEBHOOK_SECRET (whsec_..., standard-webhooks)
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const port = Number(process.env.PORT ?? 9000);
const host = process.env.HOST ?? "127.0.0.1";
const pyflySecret = process.env.PYFLY_SECRET ?? "";
const webhookSecret = process.env.WEBHOOK_SECRET ?? "";
const seen = new Set();

function safeEqual(a, b) {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function verifyPyfly(body, header) {
  const expected = createHmac("sha256", pyflySecret).update(body).digest("hex");
  return safeEqual(expected, String(header ?? "").replace(/^sha256=/, ""));
}

function verifyStandardWebhook(body, headers) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const key = Buffer.from(webhookSecret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64");
  return String(headers["webhook-signature"] ?? "")
    .split(" ")
    .some((sig) => sig.startsWith("v1,") && safeEqual(sig.slice(3), expected));
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const scheme = req.headers["webhook-signature"] ? "standard-webhooks" : "pyfly";
    const valid = scheme === "pyfly" ? verifyPyfly(body, req.headers["x-pyfly-signature"]) : verifyStandardWebhook(body, req.headers);
    const deliveryId = req.headers["x-pyfly-delivery-id"];
    const duplicate = seen.has(deliveryId);
    seen.add(deliveryId);
    console.log(
      JSON.stringify({
        path: req.url,
        tenant: req.headers["x-pyfly-tenant-id"],
        event_type: req.headers["x-pyfly-event-type"],
        delivery_id: deliveryId,
        scheme,
        signature_valid: valid,
        duplicate,
        body: body.toString("utf8"),
      }),
    );
    res.writeHead(valid ? 204 : 401).end();
  });
});
server.listen(port, host, () => console.error(`sample receiver listening on http://${host}:${server.address().port}`));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));
