/**
 * Python compares str by code point; JS `<` compares UTF-16 units, which puts astral characters
 * (D800..DFFF units) before U+E000..U+FFFF. Only used when a key has a unit >= 0xD800.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (i === n) return a.length - b.length;
  // A shared high surrogate just before the difference starts the code point that differs.
  const j = i > 0 && isHighSurrogate(a.charCodeAt(i - 1)) ? i - 1 : i;
  let ca = a.codePointAt(j)!;
  let cb = b.codePointAt(j)!;
  if (ca === cb) {
    ca = a.codePointAt(i)!;
    cb = b.codePointAt(i)!;
  }
  return ca - cb;
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}
