import { copyFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TlsMaterial, type TlsMaterialError } from "../../src/delivery/tls-material.js";
import { createTestCa, type IssuedCertificate, type TestCa } from "../support/test-ca.js";

describe("receiver TLS material", () => {
  let ca: TestCa;
  let first: IssuedCertificate;
  let second: IssuedCertificate;
  beforeAll(() => {
    ca = createTestCa("material");
    first = ca.client("first");
    second = ca.client("second");
  });
  afterAll(() => ca.remove());

  it("reloads when the files change, at most once a second; a change that does not read keeps the previous material until the next change", () => {
    const certFile = `${ca.dir}/live.crt`;
    const keyFile = `${ca.dir}/live.key`;
    copyFileSync(first.certFile, certFile);
    copyFileSync(first.keyFile, keyFile);
    let now = 0;
    const reports: string[] = [];
    const material = new TlsMaterial(
      { client_cert_file: certFile, client_key_file: keyFile, ca_file: ca.caFile, min_version: "TLSv1.3" },
      { reloaded: () => reports.push("reloaded"), failed: (e: TlsMaterialError) => reports.push(`failed ${e.key}`) },
      () => now,
    );
    const v0 = material.current();
    expect(v0.version).toBe(0);
    expect(v0.options.cert?.equals(first.cert)).toBe(true);
    expect(v0.options.minVersion).toBe("TLSv1.3");

    // Half way through an update: the new certificate, the old key.
    copyFileSync(second.certFile, certFile);
    expect(material.current().version).toBe(0); // not looked at within the second
    now += 1_000;
    expect(material.current()).toMatchObject({ version: 0 });
    expect(material.current().options.cert?.equals(first.cert)).toBe(true);
    now += 1_000;
    material.current();
    expect(reports).toEqual(["failed client-key-file"]); // once per change, not once per look

    copyFileSync(second.keyFile, keyFile);
    now += 1_000;
    const v1 = material.current();
    expect(v1.version).toBe(1);
    expect(v1.options.cert?.equals(second.cert)).toBe(true);
    expect(reports).toEqual(["failed client-key-file", "reloaded"]);

    writeFileSync(certFile, "");
    now += 1_000;
    expect(material.current().version).toBe(1);
    expect(reports.at(-1)).toBe("failed client-key-file");
  });
});
