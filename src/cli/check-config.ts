/**
 * `check-config`: the same loading and validation as `run`, without connecting to anything, so a
 * deployment can gate on it (exit 78 names every bad key path at once).
 */
import type { SidecarSettings } from "../config/settings.js";
import { CONFIG_OPTION, EXIT, loadConfig, parseCommandArgs, writeErr, writeOut } from "./common.js";

export const CHECK_CONFIG_USAGE = `Usage: callback-sidecar check-config [--config PATH]

Loads and validates the configuration (file, placeholders, environment overrides) and prints a summary.
  --config PATH   else $PYFLY_CONFIG_FILE, else ./application.yml`;

export async function checkConfigCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(argv, CONFIG_OPTION);
  const { settings, file, warnings } = loadConfig(values.config);
  // stderr, so the summary on stdout stays what scripts parse; warnings do not fail the check.
  for (const warning of warnings) writeErr(`warning: ${warning.message}`);
  writeOut(summary(settings, file));
  return EXIT.OK;
}

/** Counts and names only: secrets, headers and URLs stay out of it. */
export function summary(settings: SidecarSettings, file: string | undefined): string {
  const configs = settings.configs;
  const tenants = new Set(configs.map((c) => c.tenant_id));
  const disabled = configs.filter((c) => !c.enabled).length;
  const unsigned = configs.filter((c) => !c.secret).map((c) => `${c.tenant_id}/${c.name}`);
  const subscriptions = configs.reduce((n, c) => n + c.subscriptions.length, 0);
  const k = settings.kafka;
  const topics = k.topicPattern !== undefined ? `pattern /${k.topicPattern}/` : k.topics.length > 0 ? k.topics.join(", ") : "(none)";
  return [
    `configuration OK: ${file ?? "no file (defaults and environment only)"}`,
    `  enabled:       ${settings.enabled}`,
    `  tenants:       ${tenants.size}`,
    `  configs:       ${configs.length}${disabled > 0 ? ` (${disabled} disabled)` : ""}`,
    `  subscriptions: ${subscriptions}`,
    `  topics:        ${topics}`,
    `  brokers:       ${k.brokers.join(", ")}`,
    ...(unsigned.length > 0 ? [`  unsigned:      ${unsigned.join(", ")} (no secret: webhooks go out without a signature)`] : []),
  ].join("\n");
}
