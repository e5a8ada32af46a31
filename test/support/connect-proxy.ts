/**
 * A real HTTP CONNECT proxy on 127.0.0.1 for tests: it logs every CONNECT it is asked for and
 * tunnels bytes both ways, or answers as a failing proxy does (a status of its own, or asks for
 * credentials it was given).
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { connect, type Socket } from "node:net";

export interface ConnectProxy {
  url: string;
  port: number;
  /** Every CONNECT target ("127.0.0.1:8443"), in order, refused ones included. */
  connects: string[];
  /** The Proxy-Authorization values received, in order. */
  authorizations: (string | undefined)[];
  /** Answer every CONNECT with this status instead of tunnelling (undefined: tunnel). */
  refuseWith: number | undefined;
  close(): Promise<void>;
}

/** `credentials`: "user:password" the proxy requires (407 without them). */
export async function startConnectProxy(options: { credentials?: string } = {}): Promise<ConnectProxy> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((_req, res) => {
    res.writeHead(405).end("CONNECT only");
  });
  const proxy: ConnectProxy = {
    url: "",
    port: 0,
    connects: [],
    authorizations: [],
    refuseWith: undefined,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const expected = options.credentials === undefined ? undefined : `Basic ${Buffer.from(options.credentials).toString("base64")}`;
  server.on("connect", (req: IncomingMessage, client: Socket, head: Buffer) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => undefined);
    const target = req.url ?? "";
    proxy.connects.push(target);
    proxy.authorizations.push(req.headers["proxy-authorization"]);
    if (expected !== undefined && req.headers["proxy-authorization"] !== expected) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\n\r\n');
      return;
    }
    if (proxy.refuseWith !== undefined) {
      client.end(`HTTP/1.1 ${proxy.refuseWith} Refused\r\n\r\n`);
      return;
    }
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target);
    if (!m) {
      client.end("HTTP/1.1 400 Bad Request\r\n\r\n");
      return;
    }
    const upstream = connect({ host: m[1], port: Number(m[2]) });
    sockets.add(upstream);
    upstream.on("close", () => sockets.delete(upstream));
    upstream.once("connect", () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on("error", () => client.end("HTTP/1.1 502 Bad Gateway\r\n\r\n"));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  proxy.port = port;
  proxy.url = `http://127.0.0.1:${port}`;
  return proxy;
}
