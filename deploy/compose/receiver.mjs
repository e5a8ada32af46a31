// Sample webhook receiver: checks X-Pyfly-Signature (sha256=<hex HMAC-SHA256(secret, raw body)>)
// over the exact bytes received, prints each delivery, answers 204 or 401. No dependencies, so
// it runs on the stock node image.
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const secret = process.env.CALLBACK_SECRET ?? "";
const port = Number(process.env.PORT ?? 3000);

function valid(body, header) {
  if (!secret || !header) return false;
  const given = Buffer.from(header.replace(/^sha256=/, ""), "utf8");
  const expected = Buffer.from(createHmac("sha256", secret).update(body).digest("hex"), "utf8");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const server = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/healthz") return res.writeHead(200).end("ok");
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const ok = valid(body, req.headers["x-pyfly-signature"]);
    console.log(JSON.stringify({ path: req.url, signature: ok ? "valid" : "INVALID", deliveryId: req.headers["x-pyfly-delivery-id"], body: body.toString("utf8") }));
    res.writeHead(ok ? 204 : 401).end();
  });
});
server.listen(port, () => console.log(`receiver listening on ${port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
