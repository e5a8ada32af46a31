/**
 * An HTTPS receiver that requires a client certificate, verified by OpenSSL itself (CPython's ssl
 * module, standard library only), as nginx-less receivers in Go, Envoy or Java do: a missing or
 * untrusted certificate is refused in the handshake with a TLS alert. (Node's own https server
 * verifies in JavaScript and closes without an alert, which no client can tell from a dropped
 * connection.) Each request is reported with the client certificate's common name.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const SERVER = `
import json, ssl, sys
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        cert = self.connection.getpeercert() or {}
        subject = dict(pair[0] for pair in cert.get("subject", ()))
        print(json.dumps({"path": self.path, "cn": subject.get("commonName")}), flush=True)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass

cert, key, ca = sys.argv[1:4]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
context.load_verify_locations(ca)
context.verify_mode = ssl.CERT_REQUIRED
class Server(ThreadingHTTPServer):
    daemon_threads = True
    # The handshake runs in the connection's own thread (on its first read), so one slow or
    # refused client never holds up the others.
    def get_request(self):
        sock, address = self.socket.accept()
        return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address
    def handle_error(self, request, client_address):
        print(json.dumps({"refused": str(sys.exc_info()[1])}), flush=True)

server = Server(("127.0.0.1", 0), Handler)
print(json.dumps({"port": server.server_address[1]}), flush=True)
server.serve_forever()
`;

export interface MtlsReceiver {
  port: number;
  /** Requests in arrival order: path and the client certificate's CN. */
  requests: { path: string; cn: string | null }[];
  /** Connections it refused, with OpenSSL's reason. */
  refused: string[];
  close(): Promise<void>;
}

/** Serves with `certFile`/`keyFile`, requiring client certificates issued by `caFile`. */
export async function startMtlsReceiver(certFile: string, keyFile: string, caFile: string): Promise<MtlsReceiver> {
  const dir = mkdtempSync(join(tmpdir(), "mtls-receiver-"));
  const script = join(dir, "server.py");
  writeFileSync(script, SERVER);
  const child: ChildProcess = spawn("python3", [script, certFile, keyFile, caFile], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  const requests: MtlsReceiver["requests"] = [];
  const refused: string[] = [];
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`mTLS receiver exited (${code}): ${stderr}`)));
    lines.on("line", (line) => {
      const message = JSON.parse(line) as { port?: number; path?: string; cn?: string | null; refused?: string };
      if (message.port !== undefined) resolve(message.port);
      else if (message.refused !== undefined) refused.push(message.refused);
      else requests.push({ path: message.path ?? "", cn: message.cn ?? null });
    });
  });
  return {
    port,
    requests,
    refused,
    close: async () => {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
