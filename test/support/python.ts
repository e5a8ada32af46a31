/**
 * Runs real CPython for interop tests. The venv with scripts/python-requirements.txt lives in
 * .cache/pyvenv and is (re)built under a file lock when missing or when the requirements change,
 * so parallel test files and CI's own install step don't race.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const PYTHON = process.env.PYTHON ?? "python3";
export const VENV_DIR = path.join(REPO_ROOT, ".cache/pyvenv");
export const REQUIREMENTS = path.join(REPO_ROOT, "scripts/python-requirements.txt");

/** Runs `python -c script` with `stdin`, returns stdout; throws with stderr on a non-zero exit. */
export function runPython(script: string, stdin = "", python = PYTHON): string {
  const r = spawnSync(python, ["-c", script], {
    input: stdin,
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, PYTHONIOENCODING: "utf-8", PYTHONDONTWRITEBYTECODE: "1" },
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${python} exited ${r.status}:\n${r.stderr}`);
  return r.stdout;
}

/** Path of the venv's python, with scripts/python-requirements.txt installed. */
export function ensurePythonVenv(): string {
  const venvPython = path.join(VENV_DIR, "bin/python");
  const stamp = path.join(VENV_DIR, ".installed-requirements");
  const script = [
    "set -e",
    `[ -x "${venvPython}" ] || "${PYTHON}" -m venv "${VENV_DIR}"`,
    `cmp -s "${REQUIREMENTS}" "${stamp}" || {`,
    `  "${venvPython}" -m pip install --quiet --disable-pip-version-check --require-hashes -r "${REQUIREMENTS}"`,
    `  cp "${REQUIREMENTS}" "${stamp}"; }`,
  ].join("\n");
  const lock = path.join(REPO_ROOT, ".cache/pyvenv.lock");
  const haveFlock = spawnSync("sh", ["-c", "command -v flock"]).status === 0;
  spawnSync("mkdir", ["-p", path.dirname(lock)]);
  const r = haveFlock
    ? spawnSync("flock", [lock, "sh", "-c", script], { encoding: "utf8" })
    : spawnSync("sh", ["-c", script], { encoding: "utf8" });
  if (r.status !== 0 || !existsSync(venvPython)) {
    throw new Error(`could not prepare ${VENV_DIR}:\n${r.stderr}${r.stdout}`);
  }
  return venvPython;
}
