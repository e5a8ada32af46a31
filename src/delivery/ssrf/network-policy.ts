/**
 * Which resolved addresses a delivery may connect to. Pure: the guarded connector feeds it the
 * address a socket is about to use; this module only decides.
 */
import { type Cidr, type IpAddress, InvalidCidrError, cidrContains, embeddedIPv4, parseCidr, parseIp } from "../../shared/ip-address.js";
import { classifyIp, describeCategory } from "./address-category.js";

export interface NetworkPolicyOptions {
  /**
   * `pyfly.callbacks.http.allow-private-networks`. When true every address is allowed, loopback
   * and link-local included: the switch exists for local development and trusted networks, and a
   * half-open switch (private yes, loopback no) would only surprise the person who flipped it.
   * Use `allowedCidrs` to open single ranges instead.
   */
  readonly allowPrivateNetworks: boolean;
  /** `pyfly.callbacks.http.allowed-cidrs`: ranges allowed whatever their category. */
  readonly allowedCidrs: readonly string[];
}

export type PolicyDecision = { readonly allowed: true } | { readonly allowed: false; readonly reason: string };

export interface NetworkPolicy {
  /** True when `check` can never refuse, so the connector may skip the guard entirely. */
  readonly allowsEverything: boolean;
  check(address: string): PolicyDecision;
}

const ALLOWED: PolicyDecision = Object.freeze({ allowed: true });
const HINT = "set pyfly.callbacks.http.allow-private-networks or add it to allowed-cidrs";

/**
 * Throws {@link InvalidCidrError} (message prefixed with the config key and index) for a bad
 * `allowedCidrs` entry, so a typo fails at startup instead of silently blocking deliveries.
 */
export function createNetworkPolicy(options: NetworkPolicyOptions): NetworkPolicy {
  const cidrs: Cidr[] = options.allowedCidrs.map((text, i) => {
    try {
      return parseCidr(text);
    } catch (err) {
      if (err instanceof InvalidCidrError) {
        err.message = `pyfly.callbacks.http.allowed-cidrs[${i}]: ${err.message}`;
      }
      throw err;
    }
  });

  if (options.allowPrivateNetworks) {
    return { allowsEverything: true, check: () => ALLOWED };
  }

  const inAllowedCidr = (addr: IpAddress): boolean => {
    // An IPv4 range also covers the IPv6 forms that carry (and reach) that IPv4 host.
    const embedded = addr.family === 6 ? embeddedIPv4(addr)?.ipv4 : undefined;
    return cidrs.some((c) => cidrContains(c, addr) || (embedded !== undefined && cidrContains(c, embedded)));
  };

  return {
    allowsEverything: false,
    check(address: string): PolicyDecision {
      const addr = parseIp(address);
      // Fail closed: whatever we cannot read as an address we cannot judge.
      if (addr === null) return { allowed: false, reason: `${JSON.stringify(address)} is not an IP address` };
      if (inAllowedCidr(addr)) return ALLOWED;
      const category = classifyIp(addr);
      if (category === "public") return ALLOWED;
      const embedded = addr.family === 6 ? embeddedIPv4(addr) : null;
      const shown = embedded !== null ? `${addr.text} (IPv4 ${embedded.ipv4.text})` : addr.text;
      return { allowed: false, reason: `address ${shown} is ${describeCategory(category)}; ${HINT}` };
    },
  };
}
