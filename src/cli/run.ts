/**
 * `run`: the sidecar itself. Consumes until SIGTERM/SIGINT, then drains within the shutdown grace,
 * commits and exits 0. With pyfly.callbacks.enabled false it says so and exits 0 at once.
 */
import { startSidecar } from "../app/sidecar.js";
import { createLogger, type LogContext } from "../observability/logger.js";
import { CONFIG_OPTION, EXIT, loadConfig, parseCommandArgs, UsageError, writeOut } from "./common.js";

export const RUN_USAGE = `Usage: callback-sidecar run [--config PATH]

Consumes the configured Kafka topics and delivers signed webhooks; serves /metrics, /healthz,
/readyz and /executions on pyfly.callbacks.server.port. Stops gracefully on SIGTERM or SIGINT.
  --config PATH   else $PYFLY_CONFIG_FILE, else ./application.yml`;

export async function runCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, { ...CONFIG_OPTION, help: { type: "boolean", short: "h" } }, true);
  if (values.help) {
    writeOut(RUN_USAGE);
    return EXIT.OK;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
  const { settings, file, warnings } = loadConfig(values.config);
  // Log lines name the current span only when there can be one.
  const logContext: LogContext | undefined = settings.tracing.enabled ? { ids: () => undefined } : undefined;
  const logger = createLogger(settings.logLevel, undefined, logContext);
  for (const warning of warnings) logger.warn({ key_path: warning.keyPath }, `configuration: ${warning.message}`);
  if (!settings.enabled) {
    logger.info({ config: file ?? "(none)" }, "pyfly.callbacks.enabled is false: nothing to do, exiting");
    logger.flush();
    return EXIT.OK;
  }
  process.on("unhandledRejection", (reason) => {
    // Unfinished records are uncommitted, so a restart redelivers them: crash rather than limp on.
    logger.fatal({ err: reason instanceof Error ? reason.message : String(reason) }, "unhandled rejection; exiting");
    logger.flush();
    process.exit(EXIT.INTERNAL);
  });

  const sidecar = await startSidecar(settings, logger, logContext);
  const signal = await Promise.race([
    new Promise<NodeJS.Signals>((resolve) => {
      process.once("SIGTERM", () => resolve("SIGTERM"));
      process.once("SIGINT", () => resolve("SIGINT"));
    }),
    sidecar.refused,
  ]);
  if (typeof signal !== "string") {
    logger.fatal({ code: signal.code, err: signal.message }, "cannot run with the cluster as it is; exiting");
    await sidecar.stop();
    await new Promise<void>((resolve) => logger.flush(() => resolve()));
    process.exit(EXIT.CONFIG);
  }
  logger.info({ signal, grace_ms: settings.shutdownGraceMs }, "stopping: draining in-flight deliveries");
  // A second signal means "now": exit without waiting for the drain.
  const forced = (again: NodeJS.Signals) => {
    logger.warn({ signal: again }, "second signal; exiting without draining");
    logger.flush();
    process.exit(EXIT.NEGATIVE);
  };
  process.once("SIGTERM", forced);
  process.once("SIGINT", forced);
  await sidecar.stop();
  logger.info("stopped");
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  // Everything that matters is committed and closed; a Kafka client still retrying a connection
  // must not keep the process alive past the grace.
  process.exit(EXIT.OK);
}
