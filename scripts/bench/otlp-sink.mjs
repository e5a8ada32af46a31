// OTLP/HTTP trace sink (a child process of scripts/bench.mjs, started for the sidecar's tracing
// variants): an HTTP server on 127.0.0.1 that answers 200 to POST /v1/traces with an empty
// ExportTraceServiceResponse and counts requests, bytes on the wire and the spans they carry. It
// runs in its own process, so decoding the exports is charged to the sink, not to the sidecar.
// Spans are counted by walking the protobuf (http/protobuf, the default) or parsing the JSON
// (http/json); a gzip body (OTEL_EXPORTER_OTLP_COMPRESSION=gzip) is inflated first.
import { createServer } from "node:http";
import { gunzipSync } from "node:zlib";

const stats = { requests: 0, bytes: 0, spans: 0, other_requests: 0, undecoded: 0, first_at: undefined, last_at: undefined };

/** Reads a protobuf varint at `pos`: [value, next position]. Lengths here fit in a double. */
function varint(buf, pos) {
  let value = 0;
  let scale = 1;
  for (;;) {
    if (pos >= buf.length) throw new Error("truncated varint");
    const b = buf[pos++];
    value += (b & 0x7f) * scale;
    if (b < 0x80) return [value, pos];
    scale *= 128;
  }
}

/** Calls `onField(fieldNumber, start, end)` for every length-delimited field of buf[start, end). */
function eachLenField(buf, start, end, onField) {
  let pos = start;
  while (pos < end) {
    let key;
    [key, pos] = varint(buf, pos);
    const wire = key % 8;
    const field = Math.floor(key / 8);
    if (wire === 0) [, pos] = varint(buf, pos);
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      let len;
      [len, pos] = varint(buf, pos);
      if (pos + len > end) throw new Error("truncated field");
      onField(field, pos, pos + len);
      pos += len;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
}

/**
 * Spans in an ExportTraceServiceRequest: resource_spans (1) -> scope_spans (2) -> spans (2).
 */
function protobufSpans(buf) {
  let spans = 0;
  eachLenField(buf, 0, buf.length, (f1, s1, e1) => {
    if (f1 !== 1) return;
    eachLenField(buf, s1, e1, (f2, s2, e2) => {
      if (f2 !== 2) return;
      eachLenField(buf, s2, e2, (f3) => {
        if (f3 === 2) spans += 1;
      });
    });
  });
  return spans;
}

function jsonSpans(buf) {
  const body = JSON.parse(buf.toString("utf8"));
  let spans = 0;
  for (const rs of body.resourceSpans ?? body.resource_spans ?? [])
    for (const ss of rs.scopeSpans ?? rs.scope_spans ?? []) spans += (ss.spans ?? []).length;
  return spans;
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    if (req.method !== "POST" || req.url?.split("?")[0] !== "/v1/traces") {
      stats.other_requests += 1;
      res.writeHead(404);
      res.end();
      return;
    }
    const wire = Buffer.concat(chunks);
    const now = Date.now();
    stats.requests += 1;
    stats.bytes += wire.length;
    stats.first_at ??= now;
    stats.last_at = now;
    const json = (req.headers["content-type"] ?? "").includes("json");
    try {
      const body = req.headers["content-encoding"] === "gzip" ? gunzipSync(wire) : wire;
      stats.spans += json ? jsonSpans(body) : protobufSpans(body);
    } catch {
      stats.undecoded += 1;
    }
    // An empty ExportTraceServiceResponse: no partial_success, everything accepted.
    if (json) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    } else {
      res.writeHead(200, { "content-type": "application/x-protobuf", "content-length": "0" });
      res.end();
    }
  });
});
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;

process.on("message", (m) => {
  if (m?.type === "stats") process.send({ type: "stats", ...stats });
  else if (m?.type === "stop") {
    server.closeAllConnections();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2_000).unref();
  }
});
process.on("disconnect", () => process.exit(0));

server.listen(0, "127.0.0.1", () => process.send({ type: "listening", port: server.address().port }));
