import { ConfigError } from "./errors.js";

/**
 * Expands `${VAR}` and `${VAR:default}` inside string scalars of an already-parsed YAML tree, so
 * secrets can come from the environment (a Kubernetes Secret) and an expanded value is never
 * re-parsed as YAML (a secret stays a string whatever it looks like).
 */
const PLACEHOLDER = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}/g;

export function expandPlaceholders(node: unknown, env: NodeJS.ProcessEnv, path: string, errors: ConfigError[]): unknown {
  if (typeof node === "string") {
    return node.replace(PLACEHOLDER, (_whole, name: string, fallback: string | undefined) => {
      const value = env[name];
      if (value !== undefined) return value;
      if (fallback !== undefined) return fallback;
      errors.push(new ConfigError(path, `environment variable ${name} is not set and the placeholder has no default`));
      return "";
    });
  }
  if (Array.isArray(node)) {
    return node.map((item, index) => expandPlaceholders(item, env, `${path}[${index}]`, errors));
  }
  if (node !== null && typeof node === "object") {
    return Object.fromEntries(
      Object.entries(node).map(([key, value]) => [key, expandPlaceholders(value, env, joinPath(path, key), errors)]),
    );
  }
  return node;
}

export function joinPath(parent: string, key: string): string {
  return parent === "" ? key : `${parent}.${key}`;
}
