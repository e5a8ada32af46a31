import js from "@eslint/js";
import tseslint from "typescript-eslint";

/*
 * The folder order of docs/architecture.md, top to bottom: a folder imports only folders below it
 * (and shared/, which everything may use). Folders on one line are peers and do not import each
 * other. ESLint's no-restricted-imports, rather than a plugin: the rule needs only path patterns,
 * and it runs in `npm run lint` with the rest, on every file, with the exact message below.
 */
const LAYERS = [
  ["cli"],
  ["app"],
  ["pipeline"],
  ["kafka", "http", "observability"],
  ["config"],
  ["delivery"],
  ["repository"],
  ["domain"],
  ["shared"],
];

const layering = LAYERS.flatMap((line, i) =>
  line.map((folder) => {
    const forbidden = [...LAYERS.slice(0, i).flat(), ...line.filter((peer) => peer !== folder)];
    return {
      files: [`src/${folder}/**/*.ts`],
      rules: {
        "no-restricted-imports": [
          "error",
          {
            patterns: forbidden.map((above) => ({
              group: [`**/${above}/*`, `**/${above}/**`],
              message: `src/${folder} must not import src/${above}: imports point down the folder order of docs/architecture.md.`,
            })),
          },
        ],
      },
    };
  }),
);

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", ".cache/", "helm/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: "readonly",
        console: "readonly",
        Buffer: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        setInterval: "readonly",
        clearInterval: "readonly",
        URL: "readonly",
        AbortController: "readonly",
        AbortSignal: "readonly",
        TextDecoder: "readonly",
        TextEncoder: "readonly",
        fetch: "readonly",
        performance: "readonly",
        queueMicrotask: "readonly",
        setImmediate: "readonly",
      },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  ...layering,
);
