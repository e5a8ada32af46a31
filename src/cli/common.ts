/**
 * What every subcommand shares: argument parsing, configuration loading, stdin, and the mapping
 * from failures to exit codes. Commands return their exit code; only index.ts touches the process.
 */
import { SidecarError } from "../shared/errors.js";
import { existsSync } from "node:fs";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { ConfigError, ConfigErrors, type ConfigWarning } from "../config/errors.js";
import { DEFAULT_CONFIG_FILE, loadSettings } from "../config/load.js";
import type { SidecarSettings } from "../config/settings.js";
import { ROTATING_SCHEMES, signingSecretProblem } from "../delivery/signing/index.js";
import { SIGNING_SCHEMES, type SigningScheme } from "../domain/models.js";

export const EXIT = {
  OK: 0,
  /** A negative answer, not a malfunction: invalid signature, failed delivery. */
  NEGATIVE: 1,
  USAGE: 2,
  /** EX_SOFTWARE: a bug or an environment failure nobody anticipated. */
  INTERNAL: 70,
  /** EX_CONFIG, what supervisors expect for a bad configuration. */
  CONFIG: 78,
} as const;

export type Command = (argv: string[]) => Promise<number>;

/** Bad invocation: the message is shown with a pointer to --help, exit 2. */
export class UsageError extends SidecarError {
  constructor(message: string) {
    super("USAGE", message);
  }
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** node:util parseArgs in strict mode, its errors turned into usage errors. */
export function parseCommandArgs<O extends Options>(argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals });
  } catch (error) {
    if ((error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      throw new UsageError((error as Error).message.split("\n")[0] ?? "invalid arguments");
    }
    throw error;
  }
}

export const CONFIG_OPTION = { config: { type: "string" } } as const;

export interface LoadedConfig {
  settings: SidecarSettings;
  /** The file that was read, or undefined when none exists and defaults plus environment apply. */
  file: string | undefined;
  /** Problems that do not stop start-up; they name key paths, never values. */
  warnings: ConfigWarning[];
}

/** --config, else PYFLY_CONFIG_FILE, else ./application.yml (absent: defaults and environment). */
export function loadConfig(configOption: string | undefined, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const explicit = configOption ?? env.PYFLY_CONFIG_FILE;
  if (explicit === "") throw new ConfigErrors([new ConfigError("", "the configuration path is empty")]);
  const file = explicit ?? DEFAULT_CONFIG_FILE;
  const warnings: ConfigWarning[] = [];
  const settings = loadSettings({ env, warnings, ...(explicit !== undefined ? { file: explicit } : {}) });
  return { settings, file: existsSync(file) ? file : undefined, warnings };
}

export async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function writeOut(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

export function writeErr(text: string): void {
  process.stderr.write(`callback-sidecar: ${text}\n`);
}

/** Turns what a command threw into a message on stderr and an exit code. */
export function exitCodeFor(error: unknown, command: string): number {
  if (error instanceof UsageError) {
    writeErr(`${command}: ${error.message}`);
    writeErr(`run 'callback-sidecar ${command} --help' for usage`);
    return EXIT.USAGE;
  }
  // ConfigError messages name key paths and problems, never values, so they are safe to print.
  if (error instanceof ConfigErrors || error instanceof ConfigError) {
    writeErr(error.message);
    return EXIT.CONFIG;
  }
  writeErr(`${command}: ${error instanceof Error ? error.message : String(error)}`);
  return EXIT.INTERNAL;
}

export const SIGNING_OPTIONS = {
  secret: { type: "string", multiple: true },
  // Command-line arguments are readable by every local user (ps, /proc); the environment is not.
  "secret-env": { type: "string", multiple: true },
  scheme: { type: "string" },
  id: { type: "string" },
  timestamp: { type: "string" },
} as const;

export interface SigningArgs {
  scheme: SigningScheme;
  secrets: string[];
  id: string | undefined;
  timestamp: number | undefined;
}

/** The options sign and verify share, checked; secrets are never repeated in a message. */
export function signingArgs(
  values: { secret?: string[]; "secret-env"?: string[]; scheme?: string; id?: string; timestamp?: string },
  env: NodeJS.ProcessEnv = process.env,
): SigningArgs {
  const scheme = values.scheme ?? "pyfly";
  if (!(SIGNING_SCHEMES as readonly string[]).includes(scheme)) {
    throw new UsageError(`--scheme must be one of ${SIGNING_SCHEMES.join(", ")}`);
  }
  const secrets = [...(values.secret ?? [])];
  for (const name of values["secret-env"] ?? []) {
    const value = env[name];
    if (!value) throw new UsageError(`--secret-env ${name}: the variable is not set or empty`);
    secrets.push(value);
  }
  if (secrets.length === 0) throw new UsageError("--secret (or --secret-env) is required");
  if (secrets.some((s) => s === "")) throw new UsageError("--secret must not be empty");
  if (!(ROTATING_SCHEMES as readonly string[]).includes(scheme) && secrets.length > 1) {
    // Such receivers check exactly one signature; rotation needs a scheme that sends several.
    throw new UsageError(`the ${scheme} scheme takes one secret`);
  }
  if (values.id !== undefined && scheme !== "standard-webhooks") throw new UsageError("--id applies to the standard-webhooks scheme only");
  if (values.timestamp !== undefined && (scheme === "pyfly" || scheme === "github")) {
    throw new UsageError("--timestamp applies to the standard-webhooks and pyfly-timestamped schemes only");
  }
  if (scheme === "standard-webhooks") {
    secrets.forEach((s, i) => {
      const problem = signingSecretProblem("standard-webhooks", s);
      if (problem) throw new UsageError(`secret #${i + 1}: ${problem}`);
    });
  }
  if (values.id === "") throw new UsageError("--id must not be empty");
  let timestamp: number | undefined;
  if (values.timestamp !== undefined) {
    if (!/^\d{1,15}$/.test(values.timestamp)) throw new UsageError("--timestamp must be unix seconds (digits only)");
    timestamp = Number(values.timestamp);
  }
  return { scheme: scheme as SigningScheme, secrets, id: values.id, timestamp };
}
