import { DELIVERY_ID_HEADER, EVENT_TYPE_HEADER, TENANT_ID_HEADER } from "../domain/header-rules.js";
import type { CallbackConfig } from "../domain/models.js";
import type { PlannedDelivery } from "../domain/routing.js";
import { USER_AGENT } from "../version.js";
import type { PreparedEvent } from "./prepared-event.js";
import { formatRequest } from "./cloudevent-format.js";
import { BODY_ONLY_SCHEMES, signatureHeaders } from "./signing/index.js";

/**
 * Headers of one attempt. Order of precedence: ours, then the subscription's (which may set
 * Content-Type or User-Agent, as in pyfly), then the signature and identity headers, which nothing
 * overrides. A signature over the body alone (pyfly, github) is computed once per config and event.
 */
export class RequestSigner {
  private readonly bodyOnlyCache = new WeakMap<PreparedEvent, Map<CallbackConfig, Record<string, string>>>();

  headersFor(event: PreparedEvent, planned: PlannedDelivery, timestampSeconds: number): Record<string, string> {
    return this.requestFor(event, planned, timestampSeconds).headers;
  }

  /** The body (pyfly's, or the CloudEvents binding's) and the headers that sign it. */
  requestFor(event: PreparedEvent, planned: PlannedDelivery, timestampSeconds: number): { body: string; headers: Record<string, string> } {
    const { subscription, deliveryId } = planned;
    const formatted = formatRequest(subscription.format, event, deliveryId);
    const merged = new Map<string, [string, string]>();
    const put = (name: string, value: string) => merged.set(name.toLowerCase(), [name, value]);

    put("Content-Type", "application/json");
    put("User-Agent", USER_AGENT);
    for (const [name, value] of Object.entries(subscription.headers)) put(name, value);
    // The binding's headers describe the body: a subscription header does not replace them.
    for (const [name, value] of Object.entries(formatted.headers)) put(name, value);
    put(EVENT_TYPE_HEADER, event.eventType);
    put(TENANT_ID_HEADER, event.tenantId);
    put(DELIVERY_ID_HEADER, deliveryId);
    for (const [name, value] of Object.entries(this.signature(event, planned, formatted.body, timestampSeconds))) put(name, value);
    return { body: formatted.body, headers: Object.fromEntries([...merged.values()]) };
  }

  private signature(event: PreparedEvent, planned: PlannedDelivery, body: string, timestamp: number): Record<string, string> {
    const { config } = planned;
    if (!config.secret) return {};
    const request = {
      scheme: config.signing_scheme,
      secrets: [config.secret, ...config.additional_secrets],
      body,
      header: config.signature_header ?? undefined,
    };
    // A structured envelope carries the delivery's own id, so its signature is the delivery's.
    if (!BODY_ONLY_SCHEMES.includes(config.signing_scheme) || body !== event.body)
      return signatureHeaders({ ...request, deliveryId: planned.deliveryId, timestamp });
    let perConfig = this.bodyOnlyCache.get(event);
    if (!perConfig) this.bodyOnlyCache.set(event, (perConfig = new Map()));
    let headers = perConfig.get(config);
    if (!headers) perConfig.set(config, (headers = signatureHeaders(request)));
    return headers;
  }
}
