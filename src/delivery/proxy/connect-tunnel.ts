import { connect as netConnect, type Socket } from "node:net";
import type { ProxyFailure } from "../../domain/outcomes.js";
import { inCauseChain, SidecarError } from "../../shared/errors.js";
import type { ProxyEndpoint } from "./proxy-route.js";

/**
 * The proxy failed: it is the deployment's road, not the target's health, so the sender keeps it
 * out of the target's breaker. Messages name the proxy without credentials.
 */
export class ProxyError extends SidecarError {
  constructor(
    readonly reason: ProxyFailure,
    message: string,
    cause?: unknown,
  ) {
    super("PROXY_FAILED", message, cause === undefined ? {} : { cause });
  }
}

/** Also looks through `cause` chains: undici hands a connect error on as it got it, or wrapped. */
export function proxyErrorOf(error: unknown): ProxyError | undefined {
  return inCauseChain(error, (e) => (e instanceof ProxyError ? e : undefined));
}

// A CONNECT answer is a status line and a few headers; anything longer is not a proxy speaking.
const MAX_RESPONSE_HEAD_BYTES = 16 * 1024;

/**
 * Opens a TCP tunnel through an HTTP proxy to `address:port` (an IP address the caller has
 * checked; the proxy is never given a name to resolve). Resolves with the socket once the proxy
 * answered 200; the caller speaks TLS or HTTP over it.
 */
export function openTunnel(proxy: ProxyEndpoint, address: string, port: number, timeoutMs: number): Promise<Socket> {
  const authority = address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: proxy.host, port: proxy.port });
    let head = Buffer.alloc(0);
    let connected = false;
    let settled = false;
    const fail = (error: ProxyError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(
      () => fail(new ProxyError("timeout", `proxy ${proxy.display} did not open a tunnel to ${authority} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once("connect", () => {
      connected = true;
      socket.setNoDelay(true);
      const auth = proxy.authorization === undefined ? "" : `Proxy-Authorization: ${proxy.authorization}\r\n`;
      socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth}\r\n`);
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      const reason = connected ? "bad_response" : "unreachable";
      fail(new ProxyError(reason, `proxy ${proxy.display}: ${error.code ?? error.message}`, error));
    });
    socket.on("close", () => fail(new ProxyError("bad_response", `proxy ${proxy.display} closed the connection before answering CONNECT`)));
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end === -1) {
        if (head.length > MAX_RESPONSE_HEAD_BYTES) fail(new ProxyError("bad_response", `proxy ${proxy.display} sent an oversized answer`));
        return;
      }
      const statusLine = head.subarray(0, head.indexOf("\r\n")).toString("latin1");
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? NaN);
      if (status !== 200) {
        const reason: ProxyFailure = Number.isNaN(status) ? "bad_response" : status === 407 ? "auth_required" : "refused";
        const said = Number.isNaN(status) ? "no HTTP status" : `HTTP ${status}`;
        fail(new ProxyError(reason, `proxy ${proxy.display} answered CONNECT ${authority} with ${said}`));
        return;
      }
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.removeAllListeners("error");
      socket.removeAllListeners("close");
      // Bytes after the answer belong to the tunnel (a server speaking first, as SMTP would).
      const rest = head.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    socket.on("data", onData);
  });
}
