#!/usr/bin/env node
// Checks the Dockerfile where no container engine runs (CI has none):
//   lint    rules an image of this project must follow (hadolint is not installable here)
//   context the build context as `docker build` would send it after .dockerignore
//   replay  the stages' COPY/RUN steps on the host, then the ENTRYPOINT as the image's USER in a
//           read-only root with a writable /tmp (mount namespace + chroot), probing /healthz.
// Plain JS so it runs with bare node before anything is built.
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, posix, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const KNOWN = new Set(["FROM", "ARG", "ENV", "WORKDIR", "COPY", "RUN", "USER", "LABEL", "EXPOSE", "ENTRYPOINT", "CMD"]);
const REQUIRED_LABELS = ["title", "description", "licenses", "version", "revision", "created"].map((l) => `org.opencontainers.image.${l}`);

// ---------- parsing ----------

/** Instructions with their line number; continuation lines joined, comments dropped. */
export function parseDockerfile(text) {
  const out = [];
  let buffer = "";
  let start = 0;
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "");
    if (buffer === "" && /^\s*(#.*)?$/.test(line)) return;
    if (buffer === "") start = i + 1;
    if (/\\\s*$/.test(line)) {
      buffer += line.replace(/\\\s*$/, " ");
      return;
    }
    buffer += line;
    const m = /^\s*(\S+)\s*(.*)$/s.exec(buffer);
    out.push({ line: start, op: m[1].toUpperCase(), args: m[2].trim() });
    buffer = "";
  });
  return out;
}

function splitFlags(args) {
  const flags = {};
  let rest = args;
  for (let m; (m = /^--([a-z-]+)(?:=(\S+))?\s+/.exec(rest)); rest = rest.slice(m[0].length)) {
    (flags[m[1]] ??= []).push(m[2] ?? "true");
  }
  return { flags, rest };
}

function substitute(value, vars) {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (whole, a, b) => vars[a ?? b] ?? whole);
}

/** KEY=VALUE pairs as LABEL and ENV write them (quotes allowed). */
function parsePairs(args) {
  const pairs = {};
  const re = /([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)/g;
  for (let m; (m = re.exec(args));) pairs[m[1]] = m[2].startsWith('"') ? JSON.parse(m[2]) : m[2];
  return pairs;
}

function execForm(args) {
  try {
    const v = JSON.parse(args);
    return Array.isArray(v) && v.every((s) => typeof s === "string") ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Stages with their instructions; global ARGs (before the first FROM) resolved for FROM. */
export function stagesOf(instructions) {
  const globals = {};
  const stages = [];
  for (const ins of instructions) {
    if (ins.op === "FROM") {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      stages.push({ line: ins.line, image: substitute(m[1], globals), name: m[2] ?? String(stages.length), steps: [] });
    } else if (stages.length === 0 && ins.op === "ARG") {
      const [k, v] = ins.args.split("=");
      globals[k] = v;
    } else if (stages.length > 0) {
      stages.at(-1).steps.push(ins);
    }
  }
  return { globals, stages };
}

// ---------- lint ----------

export function lint(text, { dockerignore = "", contextFiles } = {}) {
  const problems = [];
  const at = (line, msg) => problems.push(`Dockerfile:${line}: ${msg}`);
  const instructions = parseDockerfile(text);
  const { stages } = stagesOf(instructions);
  for (const ins of instructions)
    if (!KNOWN.has(ins.op)) at(ins.line, `${ins.op} is not used by this project's images (and the replay cannot check it)`);
  if (stages.length < 2) at(1, "expected a multi-stage build (a build stage with dev dependencies, a runtime stage without)");
  for (const s of stages) {
    if (/:latest$/.test(s.image) || !/(:[0-9]+\.[0-9]+\.[0-9]+[^:@]*|@sha256:[a-f0-9]{64})$/.test(s.image)) {
      if (!stages.some((o) => o.name === s.image)) at(s.line, `base image ${s.image} is not pinned to an exact version or digest`);
    }
  }
  const final = stages.at(-1);
  if (!final) return problems;
  for (const s of stages) {
    for (const ins of s.steps) {
      const { rest } = splitFlags(ins.args);
      if (ins.op === "RUN") {
        if (/\bnpm (install|i)\b/.test(rest)) at(ins.line, "use npm ci: installs must follow package-lock.json");
        if (/\bsudo\b/.test(rest)) at(ins.line, "sudo has no place in a build");
        if (/(^|&&|;)\s*cd\s/.test(rest)) at(ins.line, "use WORKDIR instead of cd");
        if (/apt-get install/.test(rest) && !/--no-install-recommends/.test(rest))
          at(ins.line, "apt-get install without --no-install-recommends");
        if (/apt-get install/.test(rest) && !/rm -rf \/var\/lib\/apt\/lists/.test(rest)) at(ins.line, "apt lists left in the layer");
        if (/\b(curl|wget)\b.*\|\s*(ba)?sh/.test(rest)) at(ins.line, "piping a download into a shell");
      }
      if (ins.op === "WORKDIR" && !rest.startsWith("/")) at(ins.line, "WORKDIR must be absolute");
      if ((ins.op === "ENTRYPOINT" || ins.op === "CMD") && !execForm(rest))
        at(ins.line, `${ins.op} must use the JSON (exec) form so signals reach node`);
      if (ins.op === "ENV" && Object.keys(parsePairs(rest)).some((k) => /SECRET|PASSWORD|TOKEN|KEY/i.test(k)))
        at(ins.line, "secrets do not belong in ENV");
      if (ins.op === "COPY" && /^\.\s/.test(rest)) at(ins.line, "COPY . copies the whole context; copy what the stage needs");
      if (ins.op === "COPY" && contextFiles && !splitFlags(ins.args).flags.from) {
        const sources = rest.split(/\s+/).slice(0, -1);
        for (const src of sources) {
          const norm = posix.normalize(src).replace(/\/$/, "");
          if (![...contextFiles].some((f) => f === norm || f.startsWith(`${norm}/`)))
            at(ins.line, `COPY ${src}: not in the build context (.dockerignore excludes it?)`);
        }
      }
    }
  }
  const ops = final.steps.map((s) => s.op);
  const user = final.steps.filter((s) => s.op === "USER").at(-1);
  if (!user) at(final.line, "the runtime stage must set a non-root USER");
  else {
    const [uid, gid] = user.args.split(":");
    if (!/^\d+$/.test(uid) || uid === "0") at(user.line, "USER must be a numeric non-root uid (runAsNonRoot verifies numbers only)");
    if (gid !== undefined && (!/^\d+$/.test(gid) || gid === "0")) at(user.line, "USER group must be numeric and not root");
    if (final.steps.indexOf(user) > ops.lastIndexOf("RUN") === false) at(user.line, "USER must come after the last RUN");
  }
  const expose = final.steps.filter((s) => s.op === "EXPOSE").flatMap((s) => s.args.split(/\s+/));
  if (!expose.some((p) => p.replace(/\/tcp$/, "") === "8080")) at(final.line, "the runtime stage must EXPOSE the admin port 8080");
  const entry = final.steps.filter((s) => s.op === "ENTRYPOINT").at(-1);
  if (!entry) at(final.line, "the runtime stage needs an ENTRYPOINT");
  const labels = Object.assign({}, ...final.steps.filter((s) => s.op === "LABEL").map((s) => parsePairs(s.args)));
  for (const l of REQUIRED_LABELS) if (!(l in labels)) at(final.line, `missing OCI label ${l}`);
  const runs = final.steps
    .filter((s) => s.op === "RUN")
    .map((s) => s.args)
    .join("\n");
  if (!/npm ci\b[^\n]*--omit=dev/.test(runs))
    at(final.line, "the runtime stage must install production dependencies only (npm ci --omit=dev)");
  if (!/^\s*\*\s*$/m.test(dockerignore) && !/node_modules/.test(dockerignore))
    problems.push(".dockerignore: must exclude node_modules (or allowlist from *)");
  return problems;
}

// ---------- .dockerignore, with moby/patternmatcher semantics ----------

function globToRegExp(pattern) {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*" && pattern[i + 1] === "*") {
      i++;
      if (pattern[i + 1] === "/") {
        i++;
        re += "(.*/)?";
      } else re += ".*";
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = pattern.indexOf("]", i);
      re += end < 0 ? "\\[" : pattern.slice(i, end + 1).replace(/^\[!/, "[^");
      if (end >= 0) i = end;
    } else if (c === "\\" && i + 1 < pattern.length) re += `\\${pattern[++i]}`;
    else re += c.replace(/[.+^${}()|\\/]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

export function ignoreMatcher(dockerignore) {
  const patterns = dockerignore
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const exclusion = l.startsWith("!");
      const body = posix
        .normalize((exclusion ? l.slice(1) : l).trim())
        .replace(/^\/+/, "")
        .replace(/\/$/, "");
      return { exclusion, re: globToRegExp(body) };
    });
  return (file) => {
    const parents = posix.dirname(file) === "." ? [] : posix.dirname(file).split("/");
    let excluded = false;
    for (const p of patterns) {
      let match = p.re.test(file);
      for (let i = 0; !match && i < parents.length; i++) match = p.re.test(parents.slice(0, i + 1).join("/"));
      if (match) excluded = !p.exclusion;
    }
    return excluded;
  };
}

/** Files docker would send, relative to the context root. */
export function contextFiles(root, dockerignore) {
  const ignored = ignoreMatcher(dockerignore);
  const files = [];
  const walk = (rel) => {
    for (const entry of readdirSync(join(root, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(path);
      else if (!ignored(path)) files.push(path);
    }
  };
  walk("");
  return files.sort();
}

// ---------- replay ----------

function sh(cmd, options) {
  process.stdout.write(`+ ${cmd}\n`);
  const r = spawnSync("/bin/sh", ["-c", cmd], { stdio: "inherit", ...options });
  if (r.status !== 0) throw new Error(`step failed (exit ${r.status}): ${cmd}`);
}

function freePort() {
  return new Promise((ok) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

async function poll(url, want, timeoutMs, child) {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the entrypoint exited with ${child.exitCode} before ${url} answered`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      last = `${res.status}`;
      if (res.status === want) return res;
    } catch (e) {
      last = e.cause?.code ?? e.message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url}: wanted ${want}, last ${last}`);
}

/** Runs every stage's steps under `work/<stage>`, which stands for the stage's filesystem root. */
function buildStages(stages, context, work, cacheDir) {
  for (const stage of stages) {
    const root = join(work, stage.name);
    mkdirSync(root, { recursive: true });
    let cwd = "/";
    const env = { PATH: process.env.PATH, HOME: join(root, "root") };
    const args = {};
    const inRoot = (p) => join(root, posix.resolve(cwd, p));
    console.log(`== stage ${stage.name} (FROM ${stage.image}; replayed on the host's node ${process.version})`);
    for (const ins of stage.steps) {
      const { flags, rest } = splitFlags(ins.args);
      switch (ins.op) {
        case "ARG": {
          const [k, v] = rest.split("=");
          args[k] = v ?? args[k] ?? "";
          break;
        }
        case "ENV":
          Object.assign(env, parsePairs(rest));
          break;
        case "WORKDIR":
          cwd = posix.resolve(cwd, rest);
          mkdirSync(inRoot("."), { recursive: true });
          break;
        case "COPY": {
          const parts = rest.split(/\s+/);
          const dest = parts.pop();
          const from = flags.from?.[0];
          for (const src of parts) {
            const source = from ? join(work, from, posix.resolve("/", src)) : join(context, src);
            const target = dest.endsWith("/") || parts.length > 1 ? join(inRoot(dest), posix.basename(src)) : inRoot(dest);
            if (!existsSync(source))
              throw new Error(`Dockerfile:${ins.line}: COPY ${src}: not found${from ? ` in stage ${from}` : " in the build context"}`);
            cpSync(source, target, { recursive: true });
          }
          break;
        }
        case "RUN": {
          // A cache mount lives outside the layer: point it at a cache that survives runs.
          for (const mount of flags.mount ?? []) {
            const target = /target=([^,]+)/.exec(mount)?.[1];
            if (!/type=cache/.test(mount) || !target) throw new Error(`Dockerfile:${ins.line}: unsupported mount ${mount}`);
            const hostCache = join(cacheDir, target.replace(/\W+/g, "_"));
            mkdirSync(hostCache, { recursive: true });
            mkdirSync(dirname(join(root, target)), { recursive: true });
            rmSync(join(root, target), { recursive: true, force: true });
            symlinkSync(hostCache, join(root, target));
          }
          sh(substitute(rest, { ...args, ...env }), { cwd: inRoot("."), env: { ...env, ...args } });
          break;
        }
        default:
          break;
      }
    }
    stage.env = env;
    stage.cwd = cwd;
  }
}

/** ENTRYPOINT + CMD of the last stage, run as its USER in a read-only root with /app from the replay. */
async function runFinal(stage, work, { healthTimeoutMs = 60_000 } = {}) {
  const steps = stage.steps;
  const entry = execForm(splitFlags(steps.filter((s) => s.op === "ENTRYPOINT").at(-1).args).rest);
  const cmd = execForm(steps.filter((s) => s.op === "CMD").at(-1)?.args ?? "[]") ?? [];
  const [uid, gid = uid] = steps
    .filter((s) => s.op === "USER")
    .at(-1)
    .args.split(":");
  const image = join(work, stage.name);
  const rootfs = join(work, "rootfs");
  const port = await freePort();
  const kafkaPort = await freePort(); // nothing listens there: a broker that does not exist
  // The image's own top-level directories (/app) over the host's system ones (node, libc); /etc is
  // a copy of what a process reads there, plus the config where the chart mounts its ConfigMap.
  const own = readdirSync(image).filter((d) => !["root", "tmp"].includes(d));
  for (const d of ["usr", "etc/callback-sidecar", "dev", "proc", "tmp", ...own]) mkdirSync(join(rootfs, d), { recursive: true });
  for (const l of ["bin", "lib", "lib64", "sbin"]) if (!existsSync(join(rootfs, l))) symlinkSync(`usr/${l}`, join(rootfs, l));
  for (const f of ["passwd", "group", "hosts", "resolv.conf", "nsswitch.conf", "ssl"]) {
    if (existsSync(`/etc/${f}`)) cpSync(`/etc/${f}`, join(rootfs, "etc", f), { recursive: true, verbatimSymlinks: true });
  }
  const configFile = stage.env.PYFLY_CONFIG_FILE ?? "/etc/callback-sidecar/application.yml";
  mkdirSync(join(rootfs, dirname(configFile)), { recursive: true });
  writeFileSync(
    join(rootfs, configFile),
    [
      "pyfly:",
      "  callbacks:",
      "    enabled: true",
      "    shutdown-grace: 5s",
      `    server: {port: ${port}, host: 127.0.0.1}`,
      `    kafka: {brokers: ["127.0.0.1:${kafkaPort}"], topics: [replay-events], connection-timeout: 1s}`,
      "",
    ].join("\n"),
  );
  spawnSync("chmod", ["-R", "a+rX", rootfs, work]);
  const binds = [["/usr", "usr"], ["/dev", "dev"], ["/proc", "proc"], ...own.map((d) => [join(image, d), d])];
  const q = (s) => `'${s.replace(/'/g, "'\\''")}'`;
  const envArgs = Object.entries(stage.env)
    .filter(([k]) => k !== "PATH")
    .map(([k, v]) => q(`${k}=${v}`));
  const script = [
    "set -e",
    `mount --bind ${q(rootfs)} ${q(rootfs)}`,
    ...binds.map(([from, to]) => `mount --rbind ${q(from)} ${q(join(rootfs, to))}`),
    `mount -t tmpfs -o mode=1777,size=64m tmpfs ${q(join(rootfs, "tmp"))}`,
    `mount -o remount,bind,ro ${q(rootfs)}`,
    ...own.map((d) => `mount -o remount,bind,ro ${q(join(rootfs, d))}`),
    `exec chroot ${q(rootfs)} setpriv --reuid=${uid} --regid=${gid} --clear-groups --no-new-privs -- env -i ${envArgs.join(" ")} PATH=/usr/local/bin:/usr/bin:/bin ${[...entry, ...cmd].map(q).join(" ")}`,
  ].join("\n");
  console.log(
    `== run ${[...entry, ...cmd].join(" ")} as ${uid}:${gid}, read-only root, tmpfs /tmp, admin port ${port}, broker 127.0.0.1:${kafkaPort} (absent)`,
  );
  const child = spawn("unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c", script], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  // Listen from the start: an entrypoint that dies early must still be seen to have died.
  const exited = new Promise((ok) => child.once("exit", (code, signal) => ok({ code, signal })));
  try {
    await poll(`http://127.0.0.1:${port}/healthz`, 200, healthTimeoutMs, child);
    console.log("ok: /healthz 200");
    await poll(`http://127.0.0.1:${port}/readyz`, 503, 10_000, child);
    console.log("ok: /readyz 503 (no broker)");
    const metrics = await (await poll(`http://127.0.0.1:${port}/metrics`, 200, 10_000, child)).text();
    if (!/^# TYPE callbacks_inflight_deliveries gauge$/m.test(metrics)) throw new Error("/metrics lacks callbacks_inflight_deliveries");
    console.log("ok: /metrics 200");
    const uidSeen = readFileSync(`/proc/${child.pid}/status`, "utf8").match(/^Uid:\s+(\d+)/m)?.[1];
    if (uidSeen !== uid) throw new Error(`the entrypoint runs as uid ${uidSeen}, not ${uid}`);
    console.log(`ok: runs as uid ${uidSeen}`);
  } finally {
    // The kubelet's budget: shutdown-grace (5s here) plus the chart's default 5s of slack.
    const started = Date.now();
    const running = child.exitCode === null && child.signalCode === null;
    if (running) child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    const { code, signal } = await exited;
    clearTimeout(timer);
    const took = ((Date.now() - started) / 1000).toFixed(1);
    if (!running) {
      console.log(`FAIL: the entrypoint exited on its own with ${code ?? signal}`);
      process.exitCode = 1;
    } else if (code === 0) console.log(`ok: SIGTERM -> exit 0 in ${took}s`);
    else {
      const verdict = process.env.REPLAY_SHUTDOWN_CHECK === "warn" ? "WARN" : "FAIL";
      console.log(`${verdict}: SIGTERM -> ${code ?? signal} after ${took}s (want exit 0 within shutdown-grace 5s + 5s)`);
      if (verdict === "FAIL") process.exitCode = 1;
    }
  }
}

async function replay() {
  const dockerfile = readFileSync(join(REPO, "Dockerfile"), "utf8");
  const dockerignore = readFileSync(join(REPO, ".dockerignore"), "utf8");
  const { stages } = stagesOf(parseDockerfile(dockerfile));
  const work = mkdtempSync(join(tmpdir(), "callback-sidecar-replay-"));
  const tools = process.env.CALLBACK_SIDECAR_TOOLS ?? join(process.env.HOME ?? "/root", ".cache/callback-sidecar-tools");
  try {
    const context = join(work, "context");
    const files = contextFiles(REPO, dockerignore);
    for (const f of files) cpSync(join(REPO, f), join(context, f), { recursive: true });
    console.log(`== build context: ${files.length} files after .dockerignore`);
    buildStages(stages, context, work, join(tools, "replay-cache"));
    const final = stages.at(-1);
    const size = spawnSync("du", ["-sh", join(work, final.name)], { encoding: "utf8" }).stdout.split("\t")[0];
    console.log(`== runtime stage tree: ${size}`);
    await runFinal(final, work);
  } finally {
    if (!process.env.KEEP_REPLAY) rmSync(work, { recursive: true, force: true });
    else console.log(`kept ${work}`);
  }
}

const [command] = process.argv.slice(2);
if (command === "lint") {
  const dockerignore = readFileSync(join(REPO, ".dockerignore"), "utf8");
  const problems = lint(readFileSync(join(REPO, "Dockerfile"), "utf8"), {
    dockerignore,
    contextFiles: new Set(contextFiles(REPO, dockerignore)),
  });
  for (const p of problems) console.error(p);
  console.log(problems.length === 0 ? "Dockerfile lint: ok" : `Dockerfile lint: ${problems.length} problem(s)`);
  process.exitCode = problems.length === 0 ? 0 : 1;
} else if (command === "context") {
  for (const f of contextFiles(REPO, readFileSync(join(REPO, ".dockerignore"), "utf8"))) console.log(f);
} else if (command === "replay") {
  replay().catch((e) => {
    console.error(`replay failed: ${e.message}`);
    process.exitCode = 1;
  });
} else if (command !== undefined) {
  console.error("usage: dockerfile.mjs lint|context|replay");
  process.exitCode = 2;
}
