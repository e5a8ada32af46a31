import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseSettings } from "../../src/config/load.js";
import { REPO, toolsMissing, type K8sObject } from "./lib/render.js";
import { allRenders } from "./lib/renders.js";

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
  beforeAll(() => {
    renders = allRenders();
  });

  it("loads in the sidecar for every chart values set, example and kustomize tree", () => {
    for (const [source, objects] of renders) {
      const texts = configMaps(objects);
      expect(texts.length, source).toBe(1);
      const text = texts[0]!;
      expect(() => parseSettings(text, envFor(text), source), source).not.toThrow();
    }
  });

  it("carries the chart's values through to the settings the sidecar runs with", () => {
    const text = configMaps(renders.get("helm ci/all-on-values.yaml")!)[0]!;
    const settings = parseSettings(text, envFor(text), "all-on");
    expect(settings.shutdownGraceMs).toBe(40_000);
    expect(settings.server.port).toBe(9464);
    expect(settings.kafka.topicPattern).toBe("^orders\\..*");
    expect(settings.kafka.topics).toEqual([]);
    expect(settings.kafka.sasl).toMatchObject({ mechanism: "scram-sha-512", username: "callbacks", password: SECRET });
    expect(settings.configs.map((c) => c.tenant_id)).toEqual(["acme", "globex-eu"]);
  });
});
