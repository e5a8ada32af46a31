/**
 * Stand-ins for the Secret mounts a rendered application.yml names. The sidecar's loader reads the
 * receiver TLS files (and refuses a config whose files do not load), so a test loading a rendered
 * config points each absolute path ending in tls.crt, tls.key or ca.crt at a real file of that kind:
 * a client certificate, its key, a CA (made with openssl, in a temp directory).
 */
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { createTestCa, type TestCa } from "../../support/test-ca.js";

export interface StandInTlsFiles {
  /** The config text with every such path replaced by its stand-in; `files` lists the originals. */
  rewrite(text: string): string;
  /** Original path -> stand-in path, for every path rewritten so far. */
  files: Map<string, string>;
  remove(): void;
}

const TLS_PATH = /(?<=[\s:[,{"'])\/[^\s,\]}"']*\/(tls\.crt|tls\.key|ca\.crt)(?=[\s,\]}"']|$)/gm;

export function standInTlsFiles(): StandInTlsFiles {
  const ca: TestCa = createTestCa("deploy-checks");
  const client = ca.client("callback-sidecar");
  const source = { "tls.crt": client.certFile, "tls.key": client.keyFile, "ca.crt": ca.caFile } as const;
  const files = new Map<string, string>();
  const standIn = (path: string, kind: keyof typeof source): string => {
    let copy = files.get(path);
    if (copy === undefined) {
      // One directory per original directory, so files that belong together stay together.
      const dir = join(ca.dir, "mounts", path.slice(0, -kind.length - 1).replace(/[^A-Za-z0-9]+/g, "_"));
      mkdirSync(dir, { recursive: true });
      copy = join(dir, kind);
      copyFileSync(source[kind], copy);
      files.set(path, copy);
    }
    return copy;
  };
  return {
    rewrite: (text) => text.replace(TLS_PATH, (path, kind: keyof typeof source) => standIn(path, kind)),
    files,
    remove: () => ca.remove(),
  };
}
