/**
 * The parameters KEDA's Kafka scaler (`type: kafka`) reads, parsed from the `keda:"..."` struct
 * tags of its kafkaMetadata (test/deploy/keda/kafka_scaler_metadata.go.txt), and a check of trigger
 * metadata or TriggerAuthentication parameters against them. The ScaledObject CRD types trigger
 * metadata as a plain string map: without this, a misspelt key would pass every schema and be
 * ignored (or refused) by KEDA only at run time.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CRD_DIR } from "./crd-validate.js";

export interface ScalerParameter {
  name: string;
  /** The Go type of the field: int64, bool, string, []string, or a string type of the scaler's. */
  goType: string;
  /** Where KEDA looks for it: triggerMetadata, authParams, resolvedEnv. */
  orders: Set<string>;
  optional: boolean;
  default?: string;
  enum?: string[];
}

export type Source = "triggerMetadata" | "authParams";

const FIELD = /^\s*\w+\s+(\S+)\s+`keda:"([^"]+)"`/;

export function kafkaScalerParameters(file = join(CRD_DIR, "kafka_scaler_metadata.go.txt")): Map<string, ScalerParameter> {
  const parameters = new Map<string, ScalerParameter>();
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const match = FIELD.exec(line);
    if (!match) continue;
    const [, goType, tag] = match as unknown as [string, string, string];
    const parameter: Partial<ScalerParameter> & { orders: Set<string> } = { goType, orders: new Set(), optional: false };
    for (const part of tag.split(",")) {
      const [key, value = ""] = part.split("=", 2) as [string, string | undefined];
      if (key === "name") parameter.name = value;
      else if (key === "order") for (const order of value.split(";")) parameter.orders.add(order);
      else if (key === "optional") parameter.optional = true;
      else if (key === "default") parameter.default = value;
      else if (key === "enum") parameter.enum = value.split(";");
    }
    if (!parameter.name) throw new Error(`no name in the keda tag of: ${line.trim()}`);
    parameters.set(parameter.name, parameter as ScalerParameter);
  }
  return parameters;
}

/** Whether a string is a value KEDA's parser takes for a field of this Go type. */
function valueProblem(parameter: ScalerParameter, value: string): string | undefined {
  if (parameter.enum && !parameter.enum.includes(value)) return `must be one of ${parameter.enum.join(", ")}, got ${JSON.stringify(value)}`;
  if (/^u?int(8|16|32|64)?$/.test(parameter.goType) && !/^-?\d+$/.test(value)) return `must be an integer, got ${JSON.stringify(value)}`;
  if (parameter.goType === "bool" && !["true", "false"].includes(value)) return `must be true or false, got ${JSON.stringify(value)}`;
  if (parameter.goType === "[]string" && value.split(",").some((item) => item.trim() === "")) return `must be a comma-separated list, got ${JSON.stringify(value)}`;
  return undefined;
}

/**
 * Problems of a trigger's metadata (source triggerMetadata) or of the parameter names a
 * TriggerAuthentication supplies (source authParams; an undefined value is not checked): keys the
 * scaler does not read from there, values its parser refuses, and (for triggerMetadata) the
 * required keys that are missing.
 */
export function parameterProblems(entries: Record<string, string | undefined>, source: Source, parameters = kafkaScalerParameters()): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(entries)) {
    const parameter = parameters.get(key);
    if (!parameter) out.push(`${key}: not a parameter of the Kafka scaler`);
    else if (!parameter.orders.has(source)) out.push(`${key}: the Kafka scaler does not read it from ${source} (only ${[...parameter.orders].join(", ")})`);
    else if (value !== undefined) {
      const problem = valueProblem(parameter, value);
      if (problem) out.push(`${key}: ${problem}`);
    }
  }
  if (source === "triggerMetadata") {
    for (const parameter of parameters.values()) {
      const required = !parameter.optional && parameter.default === undefined && parameter.orders.has("triggerMetadata");
      if (required && entries[parameter.name] === undefined) out.push(`${parameter.name}: required`);
    }
  }
  return out;
}
