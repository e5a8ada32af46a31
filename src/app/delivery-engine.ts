import type { Logger } from "pino";
import type { SidecarSettings } from "../config/settings.js";
import { ConfigRepository } from "../repository/config-repository.js";
import { ExecutionStore } from "../repository/execution-store.js";
import { metricsObserver } from "../observability/delivery-metrics.js";
import type { Metrics } from "../observability/metrics.js";
import { BreakerRegistry } from "../delivery/breaker.js";
import { Dispatcher } from "../delivery/dispatcher.js";
import { createDryRunSender, createHttpSender, type Sender } from "../delivery/sender.js";
import { createGuardedConnect, type LookupFn } from "../delivery/ssrf/guarded-connector.js";
import { createNetworkPolicy } from "../delivery/ssrf/network-policy.js";
import { createProxyRoute } from "../delivery/proxy/proxy-route.js";
import { TlsMaterial, tlsKeyOf } from "../delivery/tls-material.js";

export interface DeliveryEngine {
  dispatcher: Dispatcher;
  breakers: BreakerRegistry;
  executions: ExecutionStore;
  configs: ConfigRepository;
  close(): Promise<void>;
}

/** Wires the delivery path from settings: SSRF-guarded connector, breakers, sender, dispatcher. */
export function createDeliveryEngine(
  settings: SidecarSettings,
  logger: Logger,
  metrics?: Metrics,
  seams: { lookup?: LookupFn; keepExecutions?: boolean; keepPayloads?: boolean } = {},
): DeliveryEngine {
  const breakers = new BreakerRegistry({
    failureThreshold: settings.http.circuitBreaker.failureThreshold,
    recoveryTimeoutMs: settings.http.circuitBreaker.recoveryTimeoutMs,
    onTransition: (targetHost, state) => {
      metrics?.breakerTransitions.inc({ target_host: targetHost, state });
      logger.warn({ target_host: targetHost, state }, "circuit breaker transition");
    },
  });
  metrics?.readBreakerStatesFrom(() => breakers.states());
  const policy = createNetworkPolicy({
    allowPrivateNetworks: settings.http.allowPrivateNetworks,
    allowedCidrs: settings.http.allowedCidrs,
  });
  const proxy = createProxyRoute(settings.http.proxy);
  const sender: Sender = settings.http.dryRun
    ? createDryRunSender(logger)
    : createHttpSender({
        timeoutMs: settings.http.timeoutMs,
        maxConnectionsPerHost: settings.http.maxConnectionsPerHost,
        breakers,
        connect: (tls) =>
          createGuardedConnect(policy, {
            timeoutMs: settings.http.timeoutMs,
            proxy,
            ...(tls ? { connectorOptions: tls } : {}),
            ...(seams.lookup ? { lookup: seams.lookup } : {}),
          }),
        tlsMaterials: tlsMaterialsOf(settings, logger, metrics),
      });
  // Memory for executions only where something reads them (see sidecar.ts): each kept payload
  // holds its event's body.
  const executions = new ExecutionStore(seams.keepExecutions === false ? 0 : settings.executions.capacity);
  const configs = new ConfigRepository(settings.configs);
  const dispatcher = new Dispatcher({
    configs,
    executions,
    sender,
    jitter: settings.retry.jitter,
    keepPayloads: seams.keepPayloads !== false,
    ...(metrics ? { observer: metricsObserver(metrics) } : {}),
  });
  return {
    dispatcher,
    breakers,
    executions,
    configs,
    async close() {
      await sender.close();
      breakers.shutdown();
    },
  };
}

/**
 * The material of every receiver TLS setting the configs use, read now (load checked the files;
 * a file gone since fails the start here) and reloaded as the files change.
 */
function tlsMaterialsOf(settings: SidecarSettings, logger: Logger, metrics: Metrics | undefined): Map<string, TlsMaterial> {
  const materials = new Map<string, TlsMaterial>();
  for (const config of settings.configs) {
    if (config.tls === null || materials.has(tlsKeyOf(config.tls))) continue;
    const files = config.tls;
    const material = new TlsMaterial(files, {
      reloaded: () => {
        metrics?.tlsReloads.inc({ outcome: "reloaded" });
        logger.info({ client_cert_file: files.client_cert_file, ca_file: files.ca_file }, "receiver TLS files reloaded");
      },
      failed: (error) => {
        metrics?.tlsReloads.inc({ outcome: "failed" });
        logger.warn({ key: error.key, err: error.message }, "receiver TLS files changed but cannot be used; keeping the previous ones");
      },
    });
    materials.set(tlsKeyOf(files), material);
  }
  return materials;
}
