/** host:port of a target URL, the unit of breakers, connection pools and metric labels. */
export function targetHostOf(url: URL): string {
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return `${url.hostname}:${port}`;
}
