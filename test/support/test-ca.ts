/**
 * Certificate authorities made for a test with the openssl CLI: a CA, server certificates for
 * names and addresses, client certificates. Everything lives in a temp directory the caller removes.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface IssuedCertificate {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

export interface TestCa {
  dir: string;
  caFile: string;
  ca: Buffer;
  /** A server certificate with these subjectAltNames ("DNS:localhost", "IP:127.0.0.1"). */
  server(name: string, altNames: string[]): IssuedCertificate;
  /** A client certificate (extendedKeyUsage clientAuth). */
  client(name: string): IssuedCertificate;
  remove(): void;
}

const openssl = (cwd: string, args: string[]) => execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });

/** A new CA named `name`, valid for two days, P-256 keys throughout. */
export function createTestCa(name: string, parent?: string): TestCa {
  const dir = parent ?? mkdtempSync(join(tmpdir(), "test-ca-"));
  const caKey = join(dir, `${name}-ca.key`);
  const caFile = join(dir, `${name}-ca.crt`);
  openssl(
    dir,
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"].concat([
      "-keyout",
      caKey,
      "-out",
      caFile,
      "-days",
      "2",
      "-subj",
      `/CN=${name} test CA`,
    ]),
  );
  let serial = 1;
  const issue = (cn: string, extensions: string): IssuedCertificate => {
    const base = join(dir, `${name}-${cn}-${serial++}`);
    const ext = `${base}.ext`;
    writeFileSync(ext, extensions);
    openssl(
      dir,
      ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${base}.key`].concat([
        "-out",
        `${base}.csr`,
        "-subj",
        `/CN=${cn}`,
      ]),
    );
    openssl(
      dir,
      ["x509", "-req", "-in", `${base}.csr`, "-CA", caFile, "-CAkey", caKey, "-CAcreateserial"].concat([
        "-out",
        `${base}.crt`,
        "-days",
        "2",
        "-extfile",
        ext,
      ]),
    );
    return { certFile: `${base}.crt`, keyFile: `${base}.key`, cert: readFileSync(`${base}.crt`), key: readFileSync(`${base}.key`) };
  };
  return {
    dir,
    caFile,
    ca: readFileSync(caFile),
    server: (cn, altNames) => issue(cn, `subjectAltName=${altNames.join(",")}\nextendedKeyUsage=serverAuth\n`),
    client: (cn) => issue(cn, "extendedKeyUsage=clientAuth\n"),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
