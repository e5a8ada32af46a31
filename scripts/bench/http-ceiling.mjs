// The HTTP ceiling (a child process of scripts/bench.mjs): bare undici, one Agent with
// `connections` connections, POSTing `deliveries` pre-signed bodies (the run's payloads in the
// loop's canonical form, HMAC-SHA256 computed before the timed part) with as many requests in
// flight as connections.
import { createHmac } from "node:crypto";
import { Agent, request } from "undici";
import { DELIVERY_ID_HEADER, EVENT_TYPE, SECRET, TENANT, childConfig, onStop, payloadFactory, sortedStringify } from "./common.mjs";

const { url, deliveries, connections = 64, payloadBytes } = childConfig();
const payload = payloadFactory(payloadBytes);
const prepared = Array.from({ length: deliveries }, (_, i) => {
  const body = sortedStringify(JSON.parse(payload(i)));
  return {
    body,
    headers: {
      "content-type": "application/json",
      "x-pyfly-signature": `sha256=${createHmac("sha256", SECRET).update(body).digest("hex")}`,
      "x-pyfly-event-type": EVENT_TYPE,
      "x-pyfly-tenant-id": TENANT,
      [DELIVERY_ID_HEADER]: `http-${i}`,
    },
  };
});
const agent = new Agent({ connections });
onStop(() => agent.destroy());

let next = 0;
let failed = 0;
process.send({ type: "ready" });
await Promise.all(
  Array.from({ length: connections }, async () => {
    while (next < deliveries) {
      const { body, headers } = prepared[next++];
      const res = await request(url, { method: "POST", dispatcher: agent, headers, body });
      await res.body.dump();
      if (res.statusCode >= 300) failed += 1;
    }
  }),
);
process.send({ type: "sent", failed });
