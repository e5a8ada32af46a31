import { targetHostOf } from "../domain/target-host.js";

export interface Target {
  url: URL;
  host: string;
}

// Subscriptions are loaded once and never change: their URLs are parsed once, not per delivery.
const parsed = new Map<string, Target>();

/** The parsed target URL and its host, for a target URL from the configuration. */
export function targetOf(targetUrl: string): Target {
  let target = parsed.get(targetUrl);
  if (!target) {
    // Bounded, whatever reaches it: a cache, not a registry.
    if (parsed.size >= 10_000) parsed.clear();
    const url = new URL(targetUrl);
    parsed.set(targetUrl, (target = { url, host: targetHostOf(url) }));
  }
  return target;
}
