import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseSettings } from "../../src/config/load.js";
import { REPO, toolsMissing, type K8sObject } from "./lib/render.js";
import { allRenders } from "./lib/renders.js";
import { standInTlsFiles, type StandInTlsFiles } from "./lib/tls-files.js";

/*
 * Every application.yml we ship or render goes through the sidecar's own loader (strict keys,
 * semantics, placeholders), so a chart key the sidecar does not know fails here, not in a pod.
 */

// Standard base64 after whsec_: a valid secret for both signing schemes.
const SECRET = `whsec_${Buffer.from("deploy-check-secret-32-bytes-long!").toString("base64")}`;

function envFor(yamlText: string): NodeJS.ProcessEnv {
  return Object.fromEntries([...yamlText.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map(([, name]) => [name, SECRET]));
}

const configMaps = (objects: K8sObject[]) =>
  objects.flatMap((o) => {
    const data = (o as { data?: Record<string, string> }).data;
    return o.kind === "ConfigMap" && data?.["application.yml"] ? [data["application.yml"]] : [];
  });

describe("shipped application.yml files", () => {
  it.each(["deploy/compose/application.yml", "deploy/kustomize/base/application.yml", "deploy/kustomize/examples/existing-app/application.yml"])(
    "%s loads in the sidecar",
    (file) => {
      const text = readFileSync(join(REPO, file), "utf8");
      const settings = parseSettings(text, envFor(text), file);
      expect(settings.enabled).toBe(true);
      expect(settings.configs.length).toBeGreaterThan(0);
    },
  );

  it("compose gives the sidecar and the receiver the same secret", () => {
    const compose = parse(readFileSync(join(REPO, "deploy/docker-compose.yml"), "utf8")) as {
      services: Record<string, { environment?: Record<string, string> }>;
    };
    const text = readFileSync(join(REPO, "deploy/compose/application.yml"), "utf8");
    const settings = parseSettings(text, compose.services["callback-sidecar"]!.environment!, "compose");
    expect(settings.configs[0]!.secret).toBe(compose.services.receiver!.environment!.CALLBACK_SECRET);
  });
});

describe.skipIf(toolsMissing)("rendered application.yml", () => {
  let renders: Map<string, K8sObject[]>;
  // The loader reads receiver TLS files: the Secret mounts the config names, stood in for.
  let tls: StandInTlsFiles;
  beforeAll(() => {
    renders = allRenders();
    tls = standInTlsFiles();
  });
  afterAll(() => tls?.remove());

  it("loads in the sidecar for every chart values set, example and kustomize tree", () => {
    for (const [source, objects] of renders) {
      const texts = configMaps(objects);
      expect(texts.length, source).toBe(1);
      const text = tls.rewrite(texts[0]!);
      expect(() => parseSettings(text, envFor(text), source), source).not.toThrow();
    }
  });

  it("names the receiverTls Secret's files in http.tls, which every tenant inherits key by key", () => {
    const allOn = configMaps(renders.get("helm ci/all-on-values.yaml")!)[0]!;
    const http = (parse(allOn) as { pyfly: { callbacks: { http: { tls?: unknown } } } }).pyfly.callbacks.http;
    expect(http.tls).toEqual({
      "client-cert-file": "/etc/receiver-tls/tls.crt",
      "client-key-file": "/etc/receiver-tls/tls.key",
      "ca-file": "/etc/receiver-tls/ca.crt",
      "min-version": "TLSv1.3",
    });
    const text = tls.rewrite(allOn);
    const settings = parseSettings(text, envFor(text), "all-on");
    const [acme, globex] = settings.configs;
    // globex-eu inherits everything; acme sets its own CA over the shared one.
    expect(globex!.tls).toEqual({
      client_cert_file: tls.files.get("/etc/receiver-tls/tls.crt"),
      client_key_file: tls.files.get("/etc/receiver-tls/tls.key"),
      ca_file: tls.files.get("/etc/receiver-tls/ca.crt"),
      min_version: "TLSv1.3",
    });
    expect(acme!.tls).toEqual({ ...globex!.tls, ca_file: tls.files.get("/etc/acme-receiver-ca/ca.crt") });

    // Only the keys the Secret holds: a CA alone.
    const caOnly = configMaps(renders.get("helm ci/egress-values.yaml")!)[0]!;
    expect((parse(caOnly) as { pyfly: { callbacks: { http: { tls?: unknown } } } }).pyfly.callbacks.http.tls).toEqual({
      "ca-file": "/etc/callback-sidecar-receiver-tls/ca.crt",
    });
    // No Secret, no http.tls: the defaults leave receiver TLS to the platform.
    const defaults = configMaps(renders.get("helm (defaults)")!)[0]!;
    expect((parse(defaults) as { pyfly: { callbacks: { http: object } } }).pyfly.callbacks.http).not.toHaveProperty("tls");
  });

  it("never renders pyfly.callbacks.http.proxy: the proxy comes from the environment, its credentials from a Secret", () => {
    for (const [source, objects] of renders) {
      const config = parse(configMaps(objects)[0]!) as { pyfly: { callbacks: { http?: object } } };
      expect(config.pyfly.callbacks.http ?? {}, source).not.toHaveProperty("proxy");
    }
  });

  it("carries the chart's values through to the settings the sidecar runs with", () => {
    const text = tls.rewrite(configMaps(renders.get("helm ci/all-on-values.yaml")!)[0]!);
    const settings = parseSettings(text, envFor(text), "all-on");
    expect(settings.shutdownGraceMs).toBe(40_000);
    expect(settings.server.port).toBe(9464);
    expect(settings.kafka.topicPattern).toBe("^orders\\..*");
    expect(settings.kafka.topics).toEqual([]);
    expect(settings.kafka.sasl).toMatchObject({ mechanism: "scram-sha-512", username: "callbacks", password: SECRET });
    expect(settings.configs.map((c) => c.tenant_id)).toEqual(["acme", "globex-eu"]);
    expect(settings.configs[0]!.subscriptions[0]!.filter).toEqual({ "payload.amount": { $gte: 100 }, "headers.x-region": { $in: ["eu", "uk"] } });
  });
});
