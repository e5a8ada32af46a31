import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { contextFiles, ignoreMatcher, lint } from "../../scripts/deploy-checks/dockerfile.mjs";
import { REPO } from "./lib/render.js";

const DOCKERFILE = readFileSync(join(REPO, "Dockerfile"), "utf8");
const DOCKERIGNORE = readFileSync(join(REPO, ".dockerignore"), "utf8");

describe("Dockerfile lint", () => {
  it("passes on the project's Dockerfile, with the real build context", () => {
    expect(lint(DOCKERFILE, { dockerignore: DOCKERIGNORE, contextFiles: new Set(contextFiles(REPO, DOCKERIGNORE)) })).toEqual([]);
  });

  it.each([
    ["an unpinned base image", (d: string) => d.replace(/node:24\.\d+\.\d+-bookworm-slim/, "node:24-bookworm-slim"), /not pinned/],
    ["latest", (d: string) => d.replace(/node:24\.\d+\.\d+-bookworm-slim/, "node:latest"), /not pinned/],
    ["root at run time", (d: string) => d.replace(/^USER .*$/m, "USER root"), /numeric non-root uid/],
    ["no USER", (d: string) => d.replace(/^USER .*$/m, ""), /non-root USER/],
    ["npm install", (d: string) => d.replace("npm ci --no-audit", "npm install --no-audit"), /use npm ci/],
    ["shell-form ENTRYPOINT", (d: string) => d.replace(/^ENTRYPOINT .*$/m, "ENTRYPOINT node /app/dist/cli/index.js"), /JSON \(exec\) form/],
    ["no EXPOSE 8080", (d: string) => d.replace(/^EXPOSE 8080$/m, "EXPOSE 9000"), /EXPOSE the admin port/],
    ["a missing OCI label", (d: string) => d.replace(/org\.opencontainers\.image\.licenses="[^"]*" \\\n\s*/, ""), /licenses/],
    ["dev dependencies at run time", (d: string) => d.replace("--omit=dev ", ""), /production dependencies only/],
    ["ADD", (d: string) => d.replace("COPY src ./src", "ADD src ./src"), /ADD is not used/],
    ["a secret in ENV", (d: string) => d.replace("NODE_ENV=production", "API_TOKEN=x NODE_ENV=production"), /secrets do not belong in ENV/],
    ["single stage", (d: string) => d.slice(d.indexOf("FROM ${NODE_IMAGE} AS runtime")), /multi-stage/],
  ])("catches %s", (_name, breakIt, message) => {
    expect(lint(breakIt(DOCKERFILE), { dockerignore: DOCKERIGNORE }).join("\n")).toMatch(message);
  });

  it("catches a COPY of something .dockerignore leaves out", () => {
    const files = new Set(contextFiles(REPO, `${DOCKERIGNORE}\nsrc\n`));
    expect(lint(DOCKERFILE, { dockerignore: DOCKERIGNORE, contextFiles: files }).join("\n")).toMatch(/COPY src: not in the build context/);
  });
});

describe(".dockerignore, with docker's matching rules", () => {
  it("keeps the context to what the build needs", () => {
    const files = contextFiles(REPO, DOCKERIGNORE);
    expect(files).toContain("package-lock.json");
    expect(files).toContain("src/cli/index.ts");
    expect(files.filter((f) => !f.startsWith("src/"))).toEqual(["package-lock.json", "package.json", "tsconfig.build.json", "tsconfig.json"]);
  });

  it("follows docker's semantics: last match wins, parents count, ** spans directories", () => {
    const ignored = ignoreMatcher("*\n!src\nsrc/**/*.test.ts\n**/.env\n!keep/.env\n# comment\n/abs/*.log\n");
    expect(ignored("node_modules/x/index.js")).toBe(true);
    expect(ignored("src/a/b.ts")).toBe(false);
    expect(ignored("src/a/b.test.ts")).toBe(true);
    expect(ignored("src/.env")).toBe(true);
    expect(ignored("keep/.env")).toBe(false);
    expect(ignored("abs/x.log")).toBe(true);
    expect(ignoreMatcher("dist\n")("dist/cli/index.js")).toBe(true);
    expect(ignoreMatcher("*.md\n")("docs/a.md")).toBe(false);
  });
});
