import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  at: number;
  /** The status it was answered with (set when a `respond` behaviour chose it); absent for destroy and hang. */
  status?: number;
}

/** What the receiver does with a request: answer, hang up, or never answer. */
export type Behaviour =
  | { kind: "respond"; status: number; headers?: Record<string, string>; body?: string; delayMs?: number }
  | { kind: "destroy" }
  | { kind: "hang" };

export interface Receiver {
  url: string;
  port: number;
  requests: ReceivedRequest[];
  connections: number;
  /** Sets what the next requests get; a function sees each request first. */
  behave(behaviour: Behaviour | ((req: ReceivedRequest, index: number) => Behaviour)): void;
  /** Resolves once `count` requests have arrived. */
  waitForRequests(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1 that records every request, for integration and e2e tests. */
export async function startReceiver(
  initial: Behaviour = { kind: "respond", status: 200 },
  options: { port?: number } = {},
): Promise<Receiver> {
  let behaviour: Behaviour | ((req: ReceivedRequest, index: number) => Behaviour) = initial;
  const requests: ReceivedRequest[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const hanging = new Set<ServerResponse>();
  let connections = 0;

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const received: ReceivedRequest = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks),
        at: Date.now(),
      };
      const index = requests.push(received) - 1;
      const b = typeof behaviour === "function" ? behaviour(received, index) : behaviour;
      for (const w of waiters.filter((w) => requests.length >= w.count)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
      if (b.kind === "destroy") {
        req.socket.destroy();
      } else if (b.kind === "hang") {
        hanging.add(res);
      } else {
        received.status = b.status;
        const reply = () => {
          res.writeHead(b.status, b.headers ?? {});
          res.end(b.body ?? "");
        };
        if (b.delayMs) setTimeout(reply, b.delayMs);
        else reply();
      }
    });
  });
  server.on("connection", () => {
    connections += 1;
  });
  // `port` brings a receiver back on the port of one that was down.
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    get connections() {
      return connections;
    },
    behave(next) {
      behaviour = next;
    },
    waitForRequests(count, timeoutMs = 30_000) {
      if (requests.length >= count) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`receiver saw ${requests.length} of ${count} requests`)), timeoutMs);
        waiters.push({ count, resolve: () => (clearTimeout(timer), resolve()) });
      });
    },
    async close() {
      for (const res of hanging) res.socket?.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Answers `status` (503) to the FIRST request of each (X-Pyfly-Delivery-Id, path) pair and 200 to
 * every later one: each delivery needs exactly one retry. Use with `receiver.behave(...)`.
 */
export function failFirstAttempt(status = 503): (req: ReceivedRequest) => Behaviour {
  const seen = new Set<string>();
  return (req) => {
    const key = `${String(req.headers["x-pyfly-delivery-id"])}\u0000${new URL(req.url, "http://x").pathname}`;
    if (seen.has(key)) return { kind: "respond", status: 200 };
    seen.add(key);
    return { kind: "respond", status };
  };
}

/** A port on 127.0.0.1 where nothing listens (connections are refused). */
export async function refusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
