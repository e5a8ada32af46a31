/**
 * The I/O seam of the SSRF guard: an undici `connect` function that refuses, before any SYN, to
 * open a connection the {@link NetworkPolicy} does not allow.
 *
 * Where the check sits, and why there:
 * - DNS names: inside the `lookup` that net/tls call while connecting. The addresses judged are
 *   the ones the socket then dials, from one resolution, so DNS rebinding (one answer for a
 *   pre-check, another for the connect) has no window.
 * - IP literals: net.connect skips `lookup` for them, so they are judged before connecting.
 * - Backstop: `socket.remoteAddress` is judged once connected, before undici writes a request.
 *   It never fires unless a path skipped the two checks above.
 * - Through an egress proxy: the name is resolved and judged here, with the same guarded lookup,
 *   and the proxy is asked to CONNECT to the judged address, never to a name it would resolve
 *   itself. TLS then runs over the tunnel and verifies the target's name as it would directly.
 *   The proxy's own address is configuration, not a target: it is not judged.
 */
import { inCauseChain, SidecarError } from "../../shared/errors.js";
import dns from "node:dns";
import type { LookupAddress, LookupOptions } from "node:dns";
import type { Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import type { buildConnector as BuildConnector } from "undici";
import { buildConnector } from "../undici-parts.js";
import { openTunnel } from "../proxy/connect-tunnel.js";
import type { ProxyEndpoint, ProxyRoute } from "../proxy/proxy-route.js";
import { parseIp } from "../../shared/ip-address.js";
import type { NetworkPolicy } from "./network-policy.js";

/** The shape of `dns.lookup` that net.connect calls (both `all: true` and single answers). */
export type LookupFn = (
  hostname: string,
  options: LookupOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
) => void;

export type Connector = BuildConnector.connector;
export type ConnectorFactory = (options: BuildConnector.BuildOptions) => Connector;

/**
 * A refused destination. Not a transport failure: the sender reports it as outcome `rejected`
 * and must not count it against the circuit breaker (see {@link isSsrfBlockedError}).
 */
export class SsrfBlockedError extends SidecarError {
  constructor(
    /** The host the request named (DNS name or literal). */
    readonly host: string,
    /** The address that was refused. */
    readonly address: string,
    /** Why, from the policy, e.g. "address 10.0.0.1 is private; set ...". */
    readonly reason: string,
  ) {
    super("SSRF_BLOCKED", `refusing to connect to ${host === address ? host : `${host} (${address})`}: ${reason}`);
  }
}

/** Also looks through `cause` chains, in case a caller or undici wraps the connect error. */
export function isSsrfBlockedError(err: unknown): err is SsrfBlockedError {
  return inCauseChain(err, (e) => ((e as { code?: unknown }).code === "SSRF_BLOCKED" ? true : undefined)) === true;
}

/**
 * Wraps a lookup so that net only ever receives addresses the policy allows.
 *
 * Several answers with one refused: the whole name is refused, not filtered. A name mixing public
 * and internal records is either misconfigured or an attack; filtering would make delivery depend
 * on record order and family preference, and hide the problem until the allowed records go away.
 */
export function createGuardedLookup(policy: NetworkPolicy, lookup: LookupFn = dns.lookup as LookupFn): LookupFn {
  return (hostname, options, callback) => {
    lookup(hostname, options, (err, address, family) => {
      if (err) {
        callback(err, address, family);
        return;
      }
      const answers: readonly string[] = Array.isArray(address) ? address.map((a) => a.address) : [address];
      for (const answer of answers) {
        const decision = policy.check(answer);
        if (!decision.allowed) {
          callback(new SsrfBlockedError(hostname, answer, decision.reason), Array.isArray(address) ? [] : "");
          return;
        }
      }
      callback(null, address, family);
    });
  };
}

// BuildOptions is a union (TLS | TCP | IPC options); a plain Omit would keep only common keys.
type OmitEach<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export interface GuardedConnectOptions {
  /** Resolver seam; defaults to `dns.lookup`. Tests make names resolve to what they need here. */
  readonly lookup?: LookupFn;
  /**
   * Connect timeout (ms), resolution included. An Agent given a `connect` function ignores its own
   * `connectTimeout`, so pass it here. Default: undici's (10 s).
   */
  readonly timeoutMs?: number;
  /** Further undici connector options (TLS, keep-alive...); `lookup` and `timeout` are ours. */
  readonly connectorOptions?: Partial<OmitEach<BuildConnector.BuildOptions, "lookup" | "timeout">>;
  /** Seam for unit tests: builds the underlying connector; defaults to undici's `buildConnector`. */
  readonly connectorFactory?: ConnectorFactory;
  /** The egress proxy, for the targets it applies to. */
  readonly proxy?: ProxyRoute | undefined;
}

/**
 * An undici `connect` option (`new Agent({ connect: createGuardedConnect(policy) })`). It is
 * undici's own connector (TLS, servername, session cache, keep-alive unchanged) with the guarded
 * lookup plugged in; an allow-everything policy gets the plain connector.
 */
export function createGuardedConnect(policy: NetworkPolicy, options: GuardedConnectOptions = {}): Connector {
  const connect = guardedConnect(policy, options);
  return (connectOptions, callback) =>
    connect(connectOptions, (err, socket) => {
      if (err !== null || socket === null)
        return callback(err ?? new SidecarError("INTERNAL_INVARIANT", "the connector gave neither a socket nor an error"), null);
      if (connectOptions.protocol === "https:") keepTlsAlert(socket);
      callback(null, socket);
    });
}

/**
 * A TLS 1.3 server refuses a client certificate after the handshake, with an alert. The socket
 * reports it, then its end; undici fails the request with the end ("other side closed"), so the
 * alert is kept as that error's cause for the sender to name the refusal.
 */
function keepTlsAlert(socket: Socket): void {
  let alert: Error | undefined;
  socket.on("error", (error: Error & { code?: string; cause?: unknown }) => {
    if (alert === undefined) {
      if (error.code?.startsWith("ERR_SSL_")) alert = error;
    } else if (error !== alert && error.cause === undefined) {
      error.cause = alert;
    }
  });
}

function guardedConnect(policy: NetworkPolicy, options: GuardedConnectOptions): Connector {
  const direct = createDirectConnect(policy, options);
  const route = options.proxy;
  if (route === undefined) return direct;
  const lookup = policy.allowsEverything ? (options.lookup ?? (dns.lookup as LookupFn)) : createGuardedLookup(policy, options.lookup);
  const timeoutMs = options.timeoutMs ?? 10_000;
  return (connectOptions, callback) => {
    const { protocol, hostname } = connectOptions;
    const port = Number(connectOptions.port) || (protocol === "https:" ? 443 : 80);
    const proxy = route.proxyFor(protocol, hostname, port);
    if (proxy === undefined) return direct(connectOptions, callback);
    resolveChecked(hostname, policy, lookup)
      .then((address) =>
        throughProxy(proxy, address, port, connectOptions, options.connectorOptions as ConnectionOptions | undefined, timeoutMs),
      )
      .then(
        (socket) => callback(null, socket),
        (err: Error) => callback(err, null),
      );
  };
}

/** The address a proxied connection goes to: the first answer, every answer judged (a literal too). */
function resolveChecked(hostname: string, policy: NetworkPolicy, lookup: LookupFn): Promise<string> {
  const literal = judgeLiteral(hostname, policy);
  if (literal instanceof SsrfBlockedError) return Promise.reject(literal);
  if (literal !== undefined) return Promise.resolve(literal);
  return new Promise((resolve, reject) =>
    lookup(hostname, { all: true }, (err, answers) => {
      const first = Array.isArray(answers) ? answers[0]?.address : undefined;
      if (err !== null || first === undefined) reject(err ?? Object.assign(new Error(`${hostname} has no address`), { code: "ENOTFOUND" }));
      else resolve(first);
    }),
  );
}

/**
 * An IP literal judged before any connect: its canonical text when allowed, the refusal when not;
 * undefined for a name (the guarded lookup judges those). parseIp reads every inet_aton spelling
 * too: Node would hand "0x7f.1" to getaddrinfo, which answers 127.0.0.1.
 */
function judgeLiteral(hostname: string, policy: NetworkPolicy): string | SsrfBlockedError | undefined {
  const literal = parseIp(hostname);
  if (literal === null) return undefined;
  const decision = policy.check(literal.text);
  return decision.allowed ? literal.text : new SsrfBlockedError(hostname, literal.text, decision.reason);
}

/** Opens the tunnel to the checked address and, for https, TLS over it with the target's name. */
async function throughProxy(
  proxy: ProxyEndpoint,
  address: string,
  port: number,
  target: BuildConnector.Options,
  tls: ConnectionOptions | undefined,
  timeoutMs: number,
): Promise<Socket> {
  const tunnel = await openTunnel(proxy, address, port, timeoutMs);
  tunnel.setKeepAlive(true, 60_000);
  if (target.protocol !== "https:") return tunnel;
  const servername = target.servername ?? (parseIp(target.hostname) === null ? target.hostname : undefined);
  return new Promise((resolve, reject) => {
    const secure = tlsConnect({ ...tls, socket: tunnel, ALPNProtocols: ["http/1.1"], ...(servername ? { servername } : {}) });
    const timer = setTimeout(
      () => secure.destroy(new DOMException(`TLS handshake through the proxy took over ${timeoutMs} ms`, "TimeoutError")),
      timeoutMs,
    );
    secure.once("secureConnect", () => {
      clearTimeout(timer);
      secure.removeListener("error", onError);
      resolve(secure);
    });
    const onError = (error: Error) => {
      clearTimeout(timer);
      tunnel.destroy();
      reject(error);
    };
    secure.once("error", onError);
  });
}

/** The connector without a proxy: undici's own, with the guarded lookup and the checks above. */
function createDirectConnect(policy: NetworkPolicy, options: GuardedConnectOptions): Connector {
  const factory = options.connectorFactory ?? (buildConnector as ConnectorFactory);
  const buildOptions: BuildConnector.BuildOptions = { ...options.connectorOptions };
  if (options.timeoutMs !== undefined) buildOptions.timeout = options.timeoutMs;
  if (policy.allowsEverything) {
    return factory(options.lookup ? { ...buildOptions, lookup: options.lookup } : buildOptions);
  }
  const base = factory({ ...buildOptions, lookup: createGuardedLookup(policy, options.lookup) });

  return (connectOptions, callback) => {
    const { hostname } = connectOptions;
    const refused = judgeLiteral(hostname, policy);
    // Callers expect the callback after connect() returns, as with a real socket error.
    if (refused instanceof SsrfBlockedError) return process.nextTick(() => callback(refused, null));

    base(connectOptions, (err, socket) => {
      if (err !== null) {
        callback(err, null);
        return;
      }
      const remote = (socket as Socket).remoteAddress;
      const decision = remote === undefined ? null : policy.check(remote);
      if (decision === null || !decision.allowed) {
        (socket as Socket).destroy();
        const reason = decision === null ? "the connected peer address is unknown" : decision.reason;
        callback(new SsrfBlockedError(hostname, remote ?? "unknown", reason), null);
        return;
      }
      callback(null, socket as Socket);
    });
  };
}
