import type { CallbackConfig } from "../domain/models.js";
import type { PlannedDelivery } from "../domain/routing.js";
import { USER_AGENT } from "../version.js";
import type { PreparedEvent } from "./prepared-event.js";
import { BODY_ONLY_SCHEMES, signatureHeaders } from "./signing/index.js";

export const DELIVERY_ID_HEADER = "X-Pyfly-Delivery-Id";
export const EVENT_TYPE_HEADER = "X-Pyfly-Event-Type";
export const TENANT_ID_HEADER = "X-Pyfly-Tenant-Id";

/**
 * Headers of one attempt. Order of precedence: ours, then the subscription's (which may set
 * Content-Type or User-Agent, as in pyfly), then the signature and identity headers, which nothing
 * overrides. A signature over the body alone (pyfly, github) is computed once per config and event.
 */
export class RequestSigner {
  private readonly bodyOnlyCache = new WeakMap<PreparedEvent, Map<CallbackConfig, Record<string, string>>>();

  headersFor(event: PreparedEvent, planned: PlannedDelivery, timestampSeconds: number): Record<string, string> {
    const { subscription, deliveryId } = planned;
    const merged = new Map<string, [string, string]>();
    const put = (name: string, value: string) => merged.set(name.toLowerCase(), [name, value]);

    put("Content-Type", "application/json");
    put("User-Agent", USER_AGENT);
    for (const [name, value] of Object.entries(subscription.headers)) put(name, value);
    put(EVENT_TYPE_HEADER, event.eventType);
    put(TENANT_ID_HEADER, event.tenantId);
    put(DELIVERY_ID_HEADER, deliveryId);
    for (const [name, value] of Object.entries(this.signature(event, planned, timestampSeconds))) put(name, value);
    return Object.fromEntries([...merged.values()]);
  }

  private signature(event: PreparedEvent, planned: PlannedDelivery, timestamp: number): Record<string, string> {
    const { config } = planned;
    if (!config.secret) return {};
    const request = {
      scheme: config.signing_scheme,
      secrets: [config.secret, ...config.additional_secrets],
      body: event.body,
      header: config.signature_header ?? undefined,
    };
    if (!BODY_ONLY_SCHEMES.includes(config.signing_scheme))
      return signatureHeaders({ ...request, deliveryId: planned.deliveryId, timestamp });
    let perConfig = this.bodyOnlyCache.get(event);
    if (!perConfig) this.bodyOnlyCache.set(event, (perConfig = new Map()));
    let headers = perConfig.get(config);
    if (!headers) perConfig.set(config, (headers = signatureHeaders(request)));
    return headers;
  }
}
