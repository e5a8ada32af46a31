import { stringify } from "yaml";
import { parseSettings } from "../../src/config/load.js";
import type { SidecarSettings } from "../../src/config/settings.js";

/** Settings from a `pyfly.callbacks` object written as in application.yml (kebab-case keys). */
export function settingsFrom(callbacks: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): SidecarSettings {
  return parseSettings(stringify({ pyfly: { callbacks } }), env);
}
