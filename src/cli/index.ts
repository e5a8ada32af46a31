#!/usr/bin/env node
/**
 * callback-sidecar's entry point: picks the subcommand and turns its result into the exit code.
 * Commands are imported lazily so `sign` or `verify` don't pay for loading Kafka and HTTP clients.
 */
import { setFlagsFromString } from "node:v8";
import { VERSION } from "../version.js";
import { EXIT, exitCodeFor, type Command } from "./common.js";

interface CommandEntry {
  summary: string;
  load: () => Promise<Command>;
  /** Shown for `<command> --help`; run and replay print their own. */
  usage?: () => Promise<string>;
}

const COMMANDS: Record<string, CommandEntry> = {
  run: {
    summary: "consume Kafka and deliver signed webhooks (the sidecar process; what `npm start` runs)",
    load: async () => (await import("./run.js")).runCommand,
  },
  send: {
    summary: "TENANT EVENT_TYPE JSON: dispatch one event without Kafka and print the executions",
    load: async () => (await import("./send.js")).sendCommand,
    usage: async () => (await import("./send.js")).SEND_USAGE,
  },
  sign: {
    summary: 'sign a JSON payload read on stdin; prints {"body", "headers"}',
    load: async () => (await import("./sign.js")).signCommand,
    usage: async () => (await import("./sign.js")).SIGN_USAGE,
  },
  verify: {
    summary: "check a body read on stdin against a signature (exit 0 valid, 1 invalid)",
    load: async () => (await import("./verify.js")).verifyCommand,
    usage: async () => (await import("./verify.js")).VERIFY_USAGE,
  },
  "check-config": {
    summary: "validate the configuration and print a summary",
    load: async () => (await import("./check-config.js")).checkConfigCommand,
    usage: async () => (await import("./check-config.js")).CHECK_CONFIG_USAGE,
  },
  replay: {
    summary: "deliver dead-lettered webhooks again",
    load: async () => (await import("./replay.js")).replayCommand,
  },
};

const USAGE = `Usage: callback-sidecar <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(13)} ${c.summary}`)
  .join("\n")}

Configuration: --config PATH, else $PYFLY_CONFIG_FILE, else ./application.yml.
Exit status: 0 ok, 1 negative result (invalid signature, failed delivery), 2 usage error,
78 configuration error, 70 internal error.
Run 'callback-sidecar <command> --help' for a command's options.`;

const isHelp = (arg: string | undefined) => arg === "--help" || arg === "-h" || arg === "help";

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (isHelp(name)) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.OK;
  }
  if (name === "--version" || name === "-V") {
    process.stdout.write(`${VERSION}\n`);
    return EXIT.OK;
  }
  const entry = name === undefined ? undefined : COMMANDS[name];
  if (name === undefined || entry === undefined || !Object.hasOwn(COMMANDS, name)) {
    if (name !== undefined) process.stderr.write(`callback-sidecar: unknown command "${name}"\n\n`);
    process.stderr.write(`${USAGE}\n`);
    return EXIT.USAGE;
  }
  try {
    if (entry.usage && rest.some((a) => a === "--help" || a === "-h")) {
      process.stdout.write(`${await entry.usage()}\n`);
      return EXIT.OK;
    }
    return await (
      await entry.load()
    )(rest);
  } catch (error) {
    return exitCodeFor(error, name);
  }
}

/**
 * V8 lets the old generation grow to several times what survives a full GC before it collects
 * again: at full speed that was 250-330 MB of RSS for a live set under 60 MB. Growing it by half
 * over the live set instead keeps RSS near what the sidecar's own buffers hold, without the node
 * flags a user would otherwise have to know. 30% saved another 30 MB for a fifth more CPU; 100%
 * cost 15-20 MB more for no CPU the bench could tell (docs/operations.md#sizing). Node flags still
 * win: `node --heap-growing-percent=N` sets another policy (NODE_OPTIONS does not take that flag),
 * and `--max-old-space-size` a hard cap.
 */
const HEAP_GROWING_PERCENT = 50;
if (!process.execArgv.some((flag) => /^--heap[-_]growing[-_]percent/.test(flag)))
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);

process.exitCode = await main(process.argv.slice(2));
