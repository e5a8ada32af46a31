import { parseCidr } from "../shared/ip-address.js";
import { DELIVERY_ID_HEADER, EVENT_TYPE_HEADER, TENANT_ID_HEADER, TRANSPORT_HEADERS } from "../domain/header-rules.js";
import {
  DEFAULT_SIGNATURE_HEADER,
  isSignatureHeader,
  ROTATING_SCHEMES,
  signingSecretProblem,
  standardWebhookKeyLengthProblem,
} from "../delivery/signing/index.js";
import { ConfigError, ConfigWarning } from "./errors.js";
import { handoffTopicsOf, type RawCallbacks } from "./schema.js";
import { tierTopicName } from "../domain/retry-tiers.js";

const IDENTITY_HEADERS = new Set([DELIVERY_ID_HEADER, EVENT_TYPE_HEADER, TENANT_ID_HEADER].map((h) => h.toLowerCase()));

/** Rules that span several keys, checked once every key on its own is valid. */
export function checkSemantics(raw: RawCallbacks): ConfigError[] {
  const errors: ConfigError[] = [];
  const at = (path: string, problem: string) => errors.push(new ConfigError(`pyfly.callbacks.${path}`, problem));

  const seen = new Map<string, number>();
  const ids = new Map<string, number>();
  raw.configs.forEach((config, i) => {
    const key = `${config["tenant-id"]}\u0000${config.name}`;
    const first = seen.get(key);
    if (first !== undefined) {
      at(`configs[${i}].name`, `duplicate config "${config.name}" for tenant "${config["tenant-id"]}" (also at configs[${first}])`);
    } else {
      seen.set(key, i);
    }
    // Retries find their config again by id, and delivery ids derive from it: ids must be unique.
    if (config.id !== undefined) {
      const firstId = ids.get(config.id);
      if (firstId !== undefined) at(`configs[${i}].id`, `duplicate id (also at configs[${firstId}])`);
      else ids.set(config.id, i);
    }
    const hasSecret = config.secret !== undefined && config.secret.length > 0;
    if (config["signing-scheme"] === "standard-webhooks" && !hasSecret) {
      at(`configs[${i}].secret`, "signing-scheme standard-webhooks needs a secret");
    }
    if (hasSecret) {
      [config.secret as string, ...config["additional-secrets"]].forEach((secret, j) => {
        const problem =
          signingSecretProblem(config["signing-scheme"], secret) ??
          (config["signing-scheme"] === "standard-webhooks" ? standardWebhookKeyLengthProblem(secret) : undefined);
        // The problem text describes the format only; the secret itself is never repeated.
        if (problem) at(j === 0 ? `configs[${i}].secret` : `configs[${i}].additional-secrets[${j - 1}]`, problem);
      });
    }
    config.topics.forEach((topic, j) => {
      if (!isKafkaTopicName(topic)) at(`configs[${i}].topics[${j}]`, KAFKA_TOPIC_RULE);
    });
    config.subscriptions.forEach((subscription, j) => {
      for (const name of Object.keys(subscription.headers)) {
        const path = `configs[${i}].subscriptions[${j}].headers.${name}`;
        // Framing headers belong to the HTTP client; a configured one would corrupt or smuggle requests.
        if (TRANSPORT_HEADERS.has(name.toLowerCase())) at(path, "is set by the HTTP client and cannot be configured");
        // Even unsigned, a configured look-alike would let receivers mistake it for ours.
        const ownSignature = config["signature-header"]?.toLowerCase() === name.toLowerCase();
        if (isSignatureHeader(name) || ownSignature || IDENTITY_HEADERS.has(name.toLowerCase()))
          at(path, "is set by callback-sidecar and cannot be configured");
      }
    });
    const signatureHeader = config["signature-header"];
    if (signatureHeader !== undefined) {
      if (DEFAULT_SIGNATURE_HEADER[config["signing-scheme"]] === undefined || config["signing-scheme"] === "pyfly") {
        at(`configs[${i}].signature-header`, "applies to signing-scheme pyfly-timestamped or github only");
      } else if (TRANSPORT_HEADERS.has(signatureHeader.toLowerCase()) || IDENTITY_HEADERS.has(signatureHeader.toLowerCase())) {
        at(`configs[${i}].signature-header`, "names a header the HTTP client or callback-sidecar sets");
      }
    }
    if (config["retry-schedule"] !== undefined && (config["max-attempts"] !== undefined || config["backoff-ms"] !== undefined)) {
      at(`configs[${i}].retry-schedule`, "set either retry-schedule or max-attempts/backoff-ms, not both");
    }
    if (config["additional-secrets"].length > 0) {
      if (!ROTATING_SCHEMES.includes(config["signing-scheme"])) {
        at(
          `configs[${i}].additional-secrets`,
          `secret rotation needs signing-scheme ${ROTATING_SCHEMES.join(" or ")} (${config["signing-scheme"]} receivers accept one signature)`,
        );
      } else if (!hasSecret) {
        at(`configs[${i}].additional-secrets`, "additional secrets need a primary secret");
      }
    }
  });

  const kafka = raw.kafka;
  if (raw.enabled && kafka.topics.length === 0 && kafka["topic-pattern"] === undefined) {
    at("kafka.topics", "no topic to consume: set kafka.topics or kafka.topic-pattern");
  }
  if (kafka.topics.length > 0 && kafka["topic-pattern"] !== undefined) {
    at("kafka.topic-pattern", "set either kafka.topics or kafka.topic-pattern, not both");
  }
  const handoff = handoffTopicsOf(raw);
  raw.retry.tiers.forEach((delay, i) => {
    if (delay < 1000) at(`retry.tiers[${i}]`, "a delay tier must be at least 1s");
  });
  const tierTopics = raw.retry.tiers.map((delay, i) => [`retry.tiers[${i}]`, tierTopicName(handoff.retry, delay)] as const);
  tierTopics.forEach(([path, topic]) => {
    if (!isKafkaTopicName(topic)) at(path, `gives the tier topic name "${topic}": ${KAFKA_TOPIC_RULE}`);
  });
  const internal = [["retry.topic", handoff.retry] as const, ...tierTopics, ["dead-letter.topic", handoff.deadLetter] as const];
  for (const [path, topic] of internal) {
    if (kafka.topics.includes(topic) || (kafka["topic-pattern"] !== undefined && new RegExp(kafka["topic-pattern"]).test(topic))) {
      at(path, `topic "${topic}" is also consumed as an event topic; that would loop`);
    }
  }
  if (handoff.retry === handoff.deadLetter) {
    at("dead-letter.topic", "must differ from retry.topic");
  }
  raw.handoff.keys.forEach((key, i) => {
    // An HMAC key shorter than its hash's block of entropy is the weak link of every handoff record.
    if (Buffer.byteLength(key, "utf8") < MIN_HANDOFF_KEY_BYTES)
      at(`handoff.keys[${i}]`, `shorter than ${MIN_HANDOFF_KEY_BYTES} bytes: use 32 random bytes or more (e.g. openssl rand -base64 32)`);
  });
  raw.http["allowed-cidrs"].forEach((cidr, i) => {
    try {
      parseCidr(cidr);
    } catch (error) {
      at(`http.allowed-cidrs[${i}]`, (error as Error).message);
    }
  });
  const sasl = kafka.sasl;
  if (sasl.mechanism !== "none" && (!sasl.username || !sasl.password)) {
    at("kafka.sasl", `mechanism ${sasl.mechanism} needs username and password`);
  }
  const executions = raw.server.executions;
  if (executions.enabled && (executions.token ?? "").trim() === "") {
    at("server.executions.token", "required when server.executions.enabled is true (use a ${VAR} placeholder filled from a Secret)");
  }
  return errors;
}

// Kafka's own rule (kafka.common.internals.Topic): at most 249 of these characters, not "." or "..".
const KAFKA_TOPIC_RULE = 'not a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -, not "." or "..")';
function isKafkaTopicName(topic: string): boolean {
  return /^[a-zA-Z0-9._-]{1,249}$/.test(topic) && topic !== "." && topic !== "..";
}

/** HMAC keys below this many bytes get a start-up warning (RFC 2104 wants at least the hash's 32). */
export const MIN_PYFLY_SECRET_BYTES = 16;
const MIN_TOKEN_BYTES = 16;
const MIN_HANDOFF_KEY_BYTES = 32;

/**
 * What works but deserves the operator's attention; called only for a configuration without errors.
 * Messages name key paths and never a value.
 */
export function semanticWarnings(raw: RawCallbacks): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  const at = (path: string, problem: string) => warnings.push(new ConfigWarning(`pyfly.callbacks.${path}`, problem));
  raw.configs.forEach((config, i) => {
    // pyfly receivers take any key, so refusing one would break working setups; saying so is what we can do.
    if (config["signing-scheme"] === "pyfly" && config.secret && Buffer.byteLength(config.secret, "utf8") < MIN_PYFLY_SECRET_BYTES) {
      at(
        `configs[${i}].secret`,
        `shorter than ${MIN_PYFLY_SECRET_BYTES} bytes: anyone holding one signed webhook can try to guess it offline; use 32 random bytes or more`,
      );
    }
    const kafka = raw.kafka;
    const pattern = kafka["topic-pattern"] !== undefined ? new RegExp(kafka["topic-pattern"]) : undefined;
    config.topics.forEach((topic, j) => {
      const consumed = pattern ? pattern.test(topic) : kafka.topics.includes(topic);
      if (raw.enabled && !consumed)
        at(
          `configs[${i}].topics[${j}]`,
          `topic "${topic}" is not consumed (kafka.topics / kafka.topic-pattern): this config receives nothing from it`,
        );
    });
  });
  const token = raw.server.executions.token;
  if (raw.server.executions.enabled && token !== undefined && Buffer.byteLength(token.trim(), "utf8") < MIN_TOKEN_BYTES) {
    at("server.executions.token", `shorter than ${MIN_TOKEN_BYTES} bytes: use a long random token`);
  }
  return warnings;
}
