import type { z } from "zod";
import { ConfigError, ConfigWarning } from "./errors.js";
import { isServiceLinkVariable } from "./service-links.js";

/*
 * Relaxed binding, as Spring and pyfly users know it: PYFLY_CALLBACKS_HTTP_TIMEOUT=5s sets
 * pyfly.callbacks.http.timeout, PYFLY_CALLBACKS_CONFIGS_0_SECRET sets configs[0].secret. An
 * underscore stands for both "." and "-", so the name is resolved against the schema's keys rather
 * than guessed; a name that matches no key is an error, like an unknown key in the file.
 *
 * The one exception is what Kubernetes service links inject (service-links.ts): a Service whose name
 * starts with "pyfly-callbacks" would otherwise stop every pod at start-up. Those are skipped with
 * a warning, even where the name happens to spell a key (a Service "pyfly-callbacks-server" yields
 * PYFLY_CALLBACKS_SERVER_PORT=tcp://10.0.0.1:8080, never a valid server.port).
 */

const PREFIX = "PYFLY_CALLBACKS_";

type Node = { kind: "object"; shape: Record<string, z.ZodType> } | { kind: "array"; element: z.ZodType } | { kind: "leaf" };

interface ZodDefLike {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
}

function describe(schema: z.ZodType): Node {
  let current: z.ZodType | undefined = schema;
  while (current) {
    const def: ZodDefLike = (current as unknown as { _zod: { def: ZodDefLike } })._zod.def;
    if (def.type === "object" && def.shape) return { kind: "object", shape: def.shape };
    if (def.type === "array" && def.element) return { kind: "array", element: def.element };
    current = def.innerType ?? def.in;
  }
  return { kind: "leaf" };
}

const keyTokens = (key: string) => key.toUpperCase().split(/[-_]/);

export function applyEnvOverrides(
  document: Record<string, unknown>,
  callbacksSchema: z.ZodType,
  env: NodeJS.ProcessEnv,
  warnings: ConfigWarning[] = [],
): ConfigError[] {
  const errors: ConfigError[] = [];
  const names = Object.keys(env)
    .filter((name) => name.startsWith(PREFIX) && env[name] !== undefined)
    .sort();
  const links: string[] = [];
  for (const name of names) {
    if (isServiceLinkVariable(name, env[name] as string)) {
      links.push(name);
      continue;
    }
    const tokens = name
      .slice(PREFIX.length)
      .split("_")
      .filter((t) => t.length > 0);
    const path = resolvePath(callbacksSchema, tokens);
    if (path === undefined) {
      errors.push(new ConfigError(`environment ${name}`, "does not name a pyfly.callbacks key"));
      continue;
    }
    setAt(document, ["pyfly", "callbacks", ...path], env[name] as string);
  }
  if (links.length > 0) {
    warnings.push(
      new ConfigWarning(
        "environment",
        `ignored ${links.join(", ")}: Kubernetes service-link variables, not pyfly.callbacks keys (set enableServiceLinks: false in the pod spec to keep them out)`,
      ),
    );
  }
  return errors;
}

function resolvePath(schema: z.ZodType, tokens: string[]): (string | number)[] | undefined {
  if (tokens.length === 0) return describe(schema).kind === "leaf" ? [] : undefined;
  const node = describe(schema);
  if (node.kind === "array") {
    const head = tokens[0] as string;
    if (!/^\d+$/.test(head)) return undefined;
    const rest = resolvePath(node.element, tokens.slice(1));
    return rest && [Number(head), ...rest];
  }
  if (node.kind === "object") {
    // Longest key first, so HTTP_CIRCUIT_BREAKER_... prefers "circuit-breaker" over a shorter key.
    const candidates = Object.keys(node.shape).sort((a, b) => keyTokens(b).length - keyTokens(a).length);
    for (const key of candidates) {
      const kt = keyTokens(key);
      if (kt.every((t, i) => tokens[i] === t)) {
        const rest = resolvePath(node.shape[key] as z.ZodType, tokens.slice(kt.length));
        if (rest) return [key, ...rest];
      }
    }
  }
  return undefined;
}

function setAt(root: Record<string, unknown>, path: (string | number)[], value: string): void {
  let container: Record<string | number, unknown> = root;
  path.forEach((key, i) => {
    if (i === path.length - 1) {
      container[key] = value;
      return;
    }
    const nextIsIndex = typeof path[i + 1] === "number";
    const existing = container[key];
    const fits = nextIsIndex ? Array.isArray(existing) : existing !== null && typeof existing === "object" && !Array.isArray(existing);
    if (!fits) container[key] = nextIsIndex ? [] : {};
    container = container[key] as Record<string | number, unknown>;
  });
}
