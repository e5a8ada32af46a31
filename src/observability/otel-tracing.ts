/**
 * OpenTelemetry behind the tracing seam (tracing.ts), loaded only when tracing is on.
 *
 * Packages, all published for Node 20 (the 2.x SDK line; 3.x needs Node 22): the API 1.9, the
 * base trace SDK (BasicTracerProvider, BatchSpanProcessor, the OTEL_TRACES_SAMPLER sampler), the
 * W3C propagator, AsyncLocalStorage context, and the two OTLP/HTTP exporters. Not the Node SDK
 * bundle: it starts auto-instrumentations that would trace kafkajs and undici a second time, and
 * costs start-up time. The exporters read the standard OTEL_EXPORTER_OTLP_* variables themselves.
 *
 * Attribute names follow the OpenTelemetry semantic conventions for messaging (Kafka) and HTTP
 * clients. Nothing secret is an attribute: URLs are redacted before they get here, and no header,
 * body or signature is recorded.
 */
import {
  context as otelContext,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type TextMapGetter,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter as OtlpJsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as OtlpProtoExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { AttemptOutcome } from "../domain/outcomes.js";
import type { AttemptTrace, AttemptTarget, RecordTrace, TraceCarrier, TracedRecord, Tracing, TracingOptions } from "./tracing.js";

const fromCarrier: TextMapGetter<TraceCarrier> = {
  get: (carrier, key) => (key === "traceparent" || key === "tracestate" ? carrier(key) : undefined),
  keys: () => ["traceparent", "tracestate"],
};

function headersOf(ctx: Context): Record<string, string> {
  const headers: Record<string, string> = {};
  propagation.inject(ctx, headers);
  return headers;
}

/** error.type as the HTTP semantic conventions spell it: the status code, or what failed. */
function errorTypeOf(outcome: AttemptOutcome): string | undefined {
  switch (outcome.kind) {
    case "response":
      return outcome.status >= 400 ? String(outcome.status) : undefined;
    case "error":
      return outcome.category;
    case "rejected":
      return outcome.reason;
  }
}

export function createOtelTracing(options: TracingOptions): Tracing {
  const contextManager = new AsyncLocalStorageContextManager().enable();
  otelContext.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const exporter = options.protocol === "http/json" ? new OtlpJsonExporter() : new OtlpProtoExporter();
  // Our name and version unless OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES say otherwise.
  const resource = defaultResource()
    .merge(resourceFromAttributes({ "service.name": "callback-sidecar", "service.version": options.serviceVersion }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  const tracer = provider.getTracer("callback-sidecar", options.serviceVersion);

  options.setLogContext(() => {
    const span = trace.getSpan(otelContext.active());
    if (span === undefined) return undefined;
    const { traceId, spanId } = span.spanContext();
    return { trace_id: traceId, span_id: spanId };
  });
  options.logger.info({ protocol: options.protocol }, "tracing on: spans exported over OTLP/HTTP");

  const attemptTrace = (parent: Context, target: AttemptTarget, resendCount: number): AttemptTrace => {
    const span = tracer.startSpan(
      "POST",
      {
        kind: SpanKind.CLIENT,
        attributes: {
          "http.request.method": "POST",
          "url.full": target.url,
          "server.address": target.host,
          "server.port": target.port,
          ...(resendCount > 0 ? { "http.request.resend_count": resendCount } : {}),
        },
      },
      parent,
    );
    return {
      headers: headersOf(trace.setSpan(parent, span)),
      settled(outcome) {
        if (outcome.kind === "response") span.setAttribute("http.response.status_code", outcome.status);
        const errorType = errorTypeOf(outcome);
        if (errorType !== undefined) {
          span.setAttribute("error.type", errorType);
          span.setStatus({ code: SpanStatusCode.ERROR, ...(outcome.kind === "response" ? {} : { message: errorType }) });
        }
        if (outcome.kind === "rejected" && outcome.reason === "ssrf_blocked") span.addEvent("ssrf_refused");
        span.end();
      },
    };
  };

  return {
    record(record: TracedRecord, carrier: TraceCarrier, startedAt: number): RecordTrace {
      const parent = propagation.extract(ROOT_CONTEXT, carrier, fromCarrier);
      const span: Span = tracer.startSpan(
        `process ${record.topic}`,
        {
          kind: SpanKind.CONSUMER,
          startTime: startedAt,
          attributes: {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": record.topic,
            "messaging.consumer.group.name": options.consumerGroup,
            "messaging.destination.partition.id": String(record.partition),
            "messaging.kafka.offset": Number(record.offset),
            ...(record.key === null ? {} : { "messaging.kafka.message.key": record.key.toString("utf8") }),
          },
        },
        parent,
      );
      const own = trace.setSpan(parent, span);
      return {
        run: (work) => otelContext.with(own, work),
        context: () => headersOf(own),
        event: (name, attributes) => span.addEvent(name, attributes),
        attempt: (target, resendCount) => attemptTrace(own, target, resendCount),
        deadLettered(reason) {
          span.addEvent("dead_lettered", { reason });
          span.setAttribute("error.type", reason);
          span.setStatus({ code: SpanStatusCode.ERROR, message: reason });
        },
        end: () => span.end(),
      };
    },
    async shutdown() {
      await provider.shutdown();
      contextManager.disable();
    },
  };
}
