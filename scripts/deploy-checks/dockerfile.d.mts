// Types for dockerfile.mjs (plain JS so it runs with bare node before anything is built).
export interface Instruction {
  line: number;
  op: string;
  args: string;
}
export function parseDockerfile(text: string): Instruction[];
export function stagesOf(instructions: Instruction[]): {
  globals: Record<string, string>;
  stages: { line: number; image: string; name: string; steps: Instruction[] }[];
};
export function lint(text: string, options?: { dockerignore?: string; contextFiles?: Set<string> }): string[];
export function ignoreMatcher(dockerignore: string): (file: string) => boolean;
export function contextFiles(root: string, dockerignore: string): string[];
