import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { parseSettings } from "../../src/config/load.js";
import { ConfigErrors } from "../../src/config/errors.js";
import { createLogger } from "../../src/observability/logger.js";
import { startTracing } from "../../src/observability/tracing.js";

const SRC = join(import.meta.dirname, "../../src");
const files = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));

describe("tracing off", () => {
  it("starts nothing: no tracer provider, no OpenTelemetry global, and only otel-tracing.ts imports the SDK (loaded on demand)", async () => {
    const tracing = await startTracing(false, {
      serviceVersion: "0",
      consumerGroup: "g",
      protocol: "http/protobuf",
      logger: createLogger("silent"),
      setLogContext: () => {
        throw new Error("a log context with tracing off");
      },
    });
    expect(tracing).toBeUndefined();
    // @opentelemetry/api registers its globals (tracer provider, propagator, context manager) here.
    expect((globalThis as Record<symbol, unknown>)[Symbol.for("opentelemetry.js.api.1")]).toBeUndefined();
    const importers = files(SRC)
      .filter((f) => /from "@opentelemetry\//.test(readFileSync(f, "utf8")))
      .map((f) => relative(SRC, f));
    expect(importers).toEqual(["observability/otel-tracing.ts"]);
    expect(readFileSync(join(SRC, "observability/tracing.ts"), "utf8")).toContain('await import("./otel-tracing.js")');
  });

  it("is the default; tracing.send-trace-context is the default of each config's send-trace-context", () => {
    const s = parseSettings(
      `pyfly:
  callbacks:
    tracing: { enabled: true, send-trace-context: true }
    configs:
      - { tenant-id: a, name: inherits }
      - { tenant-id: a, name: own, send-trace-context: false }
`,
      {},
    );
    expect(parseSettings("", {}).tracing).toEqual({ enabled: false, protocol: "http/protobuf" });
    expect(s.tracing).toEqual({ enabled: true, protocol: "http/protobuf" });
    expect(s.configs.map((c) => c.send_trace_context)).toEqual([true, false]);
    expect(parseSettings("", { OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }).tracing.protocol).toBe("http/json");
  });

  it("an OTLP protocol other than http/protobuf or http/json stops a start with tracing on, naming the variable", () => {
    const yaml = "pyfly: {callbacks: {tracing: {enabled: true}}}";
    let messages: string[] = [];
    try {
      parseSettings(yaml, { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "grpc" });
    } catch (error) {
      if (error instanceof ConfigErrors) messages = error.errors.map((e) => e.message);
    }
    expect(messages).toEqual(["environment OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: expected one of http/protobuf, http/json, got grpc"]);
    // With tracing off the variable belongs to someone else.
    expect(() => parseSettings("", { OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).not.toThrow();
  });
});
