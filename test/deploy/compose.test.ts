import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { pyflySignature } from "../../src/delivery/signing/pyfly.js";
import { REPO } from "./lib/render.js";

/* No container engine here: the compose file is checked for what it promises, and its receiver runs for real. */

type Service = {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string | number>;
  volumes?: string[];
  read_only?: boolean;
  tmpfs?: string[];
  cap_drop?: string[];
  security_opt?: string[];
  stop_grace_period?: string;
  ports?: string[];
  user?: string;
};
const COMPOSE = join(REPO, "deploy/docker-compose.yml");
const compose = parse(readFileSync(COMPOSE, "utf8")) as { services: Record<string, Service> };
const sidecar = compose.services["callback-sidecar"]!;

describe("deploy/docker-compose.yml", () => {
  it("pins every pulled image to an exact version", () => {
    for (const [name, s] of Object.entries(compose.services)) {
      if (s.build) continue;
      expect(s.image, name).toMatch(/:\d+\.\d+\.\d+[\w.-]*$/);
    }
  });

  it("runs Kafka from the official image in KRaft mode", () => {
    const kafka = compose.services.kafka!;
    expect(kafka.image).toMatch(/^apache\/kafka:/);
    expect(kafka.environment).toMatchObject({ KAFKA_PROCESS_ROLES: "broker,controller", KAFKA_CONTROLLER_LISTENER_NAMES: "CONTROLLER" });
  });

  it("builds the sidecar from this repository's Dockerfile and runs it as hardened as the chart", () => {
    expect(existsSync(join(dirname(COMPOSE), sidecar.build!.context, sidecar.build!.dockerfile))).toBe(true);
    expect(sidecar.read_only).toBe(true);
    expect(sidecar.tmpfs?.some((t) => t.startsWith("/tmp"))).toBe(true);
    expect(sidecar.cap_drop).toEqual(["ALL"]);
    expect(sidecar.security_opt).toContain("no-new-privileges:true");
    expect(sidecar.ports).toContain("8080:8080");
  });

  it("mounts existing files, the config where the image expects it", () => {
    const dockerfile = readFileSync(join(REPO, "Dockerfile"), "utf8");
    const configPath = /PYFLY_CONFIG_FILE=(\S+)/.exec(dockerfile)?.[1];
    for (const service of Object.values(compose.services)) {
      for (const volume of service.volumes ?? []) expect(existsSync(resolve(dirname(COMPOSE), volume.split(":")[0]!)), volume).toBe(true);
    }
    expect(sidecar.volumes?.map((v) => v.split(":")[1])).toContain(configPath);
  });

  it("waits longer than the sidecar's shutdown-grace before killing it", () => {
    const config = parse(readFileSync(join(REPO, "deploy/compose/application.yml"), "utf8")) as { pyfly: { callbacks: { "shutdown-grace": string } } };
    expect(Number.parseInt(sidecar.stop_grace_period!)).toBeGreaterThan(Number.parseInt(config.pyfly.callbacks["shutdown-grace"]));
  });
});

describe("the sample receiver", () => {
  const secret = String(compose.services.receiver!.environment!.CALLBACK_SECRET);
  let child: ChildProcess;
  let url: string;
  const output: string[] = [];

  beforeAll(async () => {
    const port = await new Promise<number>((ok) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const { port } = s.address() as { port: number };
        s.close(() => ok(port));
      });
    });
    child = spawn(process.execPath, [join(REPO, "deploy/compose/receiver.mjs")], { env: { PORT: String(port), CALLBACK_SECRET: secret }, stdio: ["ignore", "pipe", "inherit"] });
    child.stdout!.on("data", (d: Buffer) => output.push(d.toString()));
    url = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 100; i++) {
      const up = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
      if (up) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("receiver did not start");
  });
  afterAll(() => {
    child?.kill("SIGTERM");
  });

  const post = (body: string, signature: string) =>
    fetch(`${url}/hooks`, { method: "POST", body, headers: { "content-type": "application/json", "x-pyfly-signature": signature } }).then((r) => r.status);

  it("accepts what the sidecar signs and refuses anything else", async () => {
    const body = '{"orderId":"o-1001","amount":42.5}';
    expect(await post(body, pyflySignature(secret, body))).toBe(204);
    expect(await post(`${body} `, pyflySignature(secret, body))).toBe(401);
    expect(await post(body, pyflySignature("another-secret", body))).toBe(401);
    expect(output.join("")).toMatch(/"signature":"valid"/);
  });
});
