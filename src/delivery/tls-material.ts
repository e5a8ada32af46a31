import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { rootCertificates } from "node:tls";
import type { ReceiverTls } from "../domain/models.js";
import { SidecarError } from "../shared/errors.js";

/** The file a TLS problem is about, by its config key. */
export type TlsFileKey = "client-cert-file" | "client-key-file" | "ca-file";

/** A TLS file that cannot be used; `key` names the setting, never the file's content. */
export class TlsMaterialError extends SidecarError {
  constructor(
    readonly key: TlsFileKey,
    message: string,
  ) {
    super("TLS_MATERIAL_INVALID", message);
  }
}

/** What undici's connector and tls.connect take from a receiver TLS setting. */
export interface TlsConnectOptions {
  cert?: Buffer;
  key?: Buffer;
  ca?: (string | Buffer)[];
  minVersion: "TLSv1.2" | "TLSv1.3";
}

const FILE_KEYS: readonly [TlsFileKey, "client_cert_file" | "client_key_file" | "ca_file"][] = [
  ["client-cert-file", "client_cert_file"],
  ["client-key-file", "client_key_file"],
  ["ca-file", "ca_file"],
];

/**
 * Reads and checks a setting's files: each readable, certificate and key a pair, the CA parseable.
 * The same check runs at load (config errors) and on every reload (a half-written Secret update
 * keeps the previous material).
 */
export function readTlsMaterial(tls: ReceiverTls): TlsConnectOptions {
  const read = (key: TlsFileKey, file: string | null): Buffer | undefined => {
    if (file === null) return undefined;
    try {
      return readFileSync(file);
    } catch (error) {
      throw new TlsMaterialError(key, `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  };
  const cert = read("client-cert-file", tls.client_cert_file);
  const key = read("client-key-file", tls.client_key_file);
  const ca = read("ca-file", tls.ca_file);
  if ((cert === undefined) !== (key === undefined)) {
    // Named at the one that is set: that is where the other is missing.
    const [set, missing] =
      cert === undefined ? (["client-key-file", "client-cert-file"] as const) : (["client-cert-file", "client-key-file"] as const);
    throw new TlsMaterialError(set, `${set} needs ${missing}: a client certificate and its key go together`);
  }
  const options: TlsConnectOptions = { minVersion: tls.min_version };
  if (cert !== undefined && key !== undefined) {
    // OpenSSL quietly drops a key that does not match the certificate; ask explicitly.
    let paired: boolean;
    try {
      paired = new X509Certificate(cert).checkPrivateKey(createPrivateKey(key));
    } catch (error) {
      throw new TlsMaterialError("client-key-file", `not a PEM certificate and private key: ${(error as Error).message}`);
    }
    if (!paired) throw new TlsMaterialError("client-key-file", "the client certificate and key do not form a pair");
    options.cert = cert;
    options.key = key;
  }
  if (ca !== undefined) {
    const blocks = ca.toString("latin1").match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) throw new TlsMaterialError("ca-file", "not a PEM certificate bundle: no certificate in it");
    blocks.forEach((block, i) => {
      try {
        new X509Certificate(block);
      } catch (error) {
        throw new TlsMaterialError("ca-file", `certificate ${i + 1} of the bundle does not parse: ${(error as Error).message}`);
      }
    });
    // Extra CAs add to the public roots: a receiver with a public certificate keeps working.
    options.ca = [...rootCertificates, ca];
  }
  return options;
}

/** The files' identity as the kernel sees it; a Secret update swaps a symlink, changing all three. */
function fingerprintOf(tls: ReceiverTls): string {
  return FILE_KEYS.map(([, field]) => {
    const file = tls[field];
    if (file === null) return "-";
    try {
      const s = statSync(file);
      return `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      return "missing";
    }
  }).join("|");
}

// Files are looked at no more often than this, on the delivery path (three stat calls).
const RECHECK_MS = 1_000;

/**
 * One receiver TLS setting, reloaded when its files change on disk (no restart): `current()` says
 * which version of the material is in force. A change that does not read (a file missing or half
 * written) keeps the previous material, is reported once, and is tried again on the next change.
 */
export class TlsMaterial {
  private options: TlsConnectOptions;
  private fingerprint: string;
  private failedFingerprint: string | undefined;
  private checkedAt: number;
  private version = 0;

  constructor(
    readonly tls: ReceiverTls,
    private readonly report: { reloaded(): void; failed(error: TlsMaterialError): void } = {
      reloaded: () => undefined,
      failed: () => undefined,
    },
    private readonly now: () => number = Date.now,
  ) {
    this.fingerprint = fingerprintOf(tls);
    this.options = readTlsMaterial(tls);
    this.checkedAt = now();
  }

  current(): { version: number; options: TlsConnectOptions } {
    const now = this.now();
    if (now - this.checkedAt >= RECHECK_MS) {
      this.checkedAt = now;
      const fingerprint = fingerprintOf(this.tls);
      if (fingerprint !== this.fingerprint && fingerprint !== this.failedFingerprint) this.reload(fingerprint);
    }
    return { version: this.version, options: this.options };
  }

  private reload(fingerprint: string): void {
    try {
      this.options = readTlsMaterial(this.tls);
      this.fingerprint = fingerprint;
      this.failedFingerprint = undefined;
      this.version++;
      this.report.reloaded();
    } catch (error) {
      this.failedFingerprint = fingerprint;
      if (error instanceof TlsMaterialError) this.report.failed(error);
      else throw error;
    }
  }
}

/** One key per distinct setting, so configs naming the same files share material and connections. */
export function tlsKeyOf(tls: ReceiverTls): string {
  return JSON.stringify([tls.client_cert_file, tls.client_key_file, tls.ca_file, tls.min_version]);
}
