/**
 * `send`: one event through the real delivery engine (SSRF guard, signing, retries, breakers)
 * without Kafka, for trying a configuration or a receiver. stdout carries only the executions as
 * JSON; logs go to stderr.
 */
import { createDeliveryEngine } from "../app/delivery-engine.js";
import { executionView } from "../http/admin-server.js";
import { createLogger } from "../observability/logger.js";
import { canonicalBody } from "./sign.js";
import { CONFIG_OPTION, EXIT, loadConfig, parseCommandArgs, readStdin, UsageError, writeErr, writeOut } from "./common.js";

export const SEND_USAGE = `Usage: callback-sidecar send TENANT EVENT_TYPE JSON [--config PATH]

Dispatches one event to every matching subscription, with retries, and prints the executions (JSON array).
JSON "-" reads the payload from stdin. Exit 0 when all were delivered (or none matched), 1 when any failed.
  --config PATH   else $PYFLY_CONFIG_FILE, else ./application.yml`;

export async function sendCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, CONFIG_OPTION, true);
  if (positionals.length !== 3) throw new UsageError(`expected TENANT EVENT_TYPE JSON, got ${positionals.length} argument(s)`);
  const [tenant, eventType, json] = positionals as [string, string, string];
  if (tenant === "" || eventType === "") throw new UsageError("TENANT and EVENT_TYPE must not be empty");
  // Configuration problems first (exit 78), then the payload (exit 2), then any network.
  const { settings } = loadConfig(values.config);
  const body = canonicalBody(json === "-" ? await readStdin() : json, json === "-" ? "stdin" : "JSON");

  const logger = createLogger(settings.logLevel, process.stderr);
  const engine = createDeliveryEngine(settings, logger);
  try {
    const executions = await engine.dispatcher.dispatchJson(tenant, eventType, body);
    // The payload is the caller's own input; the target URL is still redacted, as everywhere.
    writeOut(
      JSON.stringify(
        executions.map((e) => executionView(e, { includePayload: true })),
        null,
        2,
      ),
    );
    if (executions.length === 0) {
      const known = engine.configs.findByTenant(tenant).length > 0;
      writeErr(
        known
          ? `send: no enabled subscription of tenant "${tenant}" matches event type "${eventType}"`
          : `send: no config for tenant "${tenant}"`,
      );
    }
    return executions.every((e) => e.status === "DELIVERED") ? EXIT.OK : EXIT.NEGATIVE;
  } finally {
    await engine.close();
  }
}
