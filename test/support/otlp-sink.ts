/**
 * An OTLP/HTTP trace endpoint for tests: a real HTTP server on 127.0.0.1 that takes what an
 * exporter POSTs to /v1/traces, decodes OTLP/JSON into flat spans, and keeps protobuf bodies as
 * they came.
 */
import { createServer } from "node:http";

export interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 3 CLIENT, 5 CONSUMER. */
  kind: number;
  attributes: Record<string, string | number | boolean>;
  events: { name: string; attributes: Record<string, string | number | boolean> }[];
  /** OTLP status code: 2 ERROR. */
  status: number;
  resource: Record<string, string | number | boolean>;
}

export interface OtlpSink {
  url: string;
  spans: ExportedSpan[];
  /** Every request: its path, content type and raw body. */
  requests: { path: string; contentType: string; body: Buffer }[];
  close(): Promise<void>;
}

type AnyValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
type KeyValue = { key: string; value: AnyValue };

const valueOf = (v: AnyValue): string | number | boolean =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.boolValue ?? v.doubleValue ?? ""));
const attributesOf = (list: KeyValue[] | undefined) => Object.fromEntries((list ?? []).map((kv) => [kv.key, valueOf(kv.value)]));

export async function startOtlpSink(): Promise<OtlpSink> {
  const sink: OtlpSink = { url: "", spans: [], requests: [], close: async () => undefined };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const contentType = String(req.headers["content-type"] ?? "");
      sink.requests.push({ path: req.url ?? "", contentType, body });
      if (contentType.startsWith("application/json")) {
        const decoded = JSON.parse(body.toString("utf8")) as {
          resourceSpans?: { resource?: { attributes?: KeyValue[] }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[];
        };
        for (const rs of decoded.resourceSpans ?? []) {
          const resource = attributesOf(rs.resource?.attributes);
          for (const ss of rs.scopeSpans ?? [])
            for (const s of ss.spans ?? [])
              sink.spans.push({
                traceId: String(s.traceId),
                spanId: String(s.spanId),
                parentSpanId: String(s.parentSpanId ?? ""),
                name: String(s.name),
                kind: Number(s.kind),
                attributes: attributesOf(s.attributes as KeyValue[]),
                events: ((s.events as { name: string; attributes?: KeyValue[] }[] | undefined) ?? []).map((e) => ({
                  name: e.name,
                  attributes: attributesOf(e.attributes),
                })),
                status: Number((s.status as { code?: number } | undefined)?.code ?? 0),
                resource,
              });
        }
      }
      res.writeHead(200, { "content-type": contentType || "application/json" }).end(contentType.startsWith("application/json") ? "{}" : "");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  sink.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  sink.close = () => new Promise((resolve) => server.close(() => resolve()));
  return sink;
}
