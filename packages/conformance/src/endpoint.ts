/** Ports of the schemes test services use, for URLs that name none. */
const DEFAULT_PORTS: Readonly<Record<string, number>> = Object.freeze({
  'amqp:': 5672,
  'amqps:': 5671,
  'http:': 80,
  'https:': 443,
});

/** Where a service URL points: host name, port (the scheme's default when the URL has none) and `host:port`. */
export function endpointOf(url: string): { hostname: string; port: number; host: string } {
  const parsed = new URL(url);
  const port = parsed.port ? Number(parsed.port) : DEFAULT_PORTS[parsed.protocol];
  if (port === undefined) {
    throw new TypeError(`@mq-drivers/conformance: ${url} names no port and ${parsed.protocol} has no known default`);
  }
  // URL keeps the brackets of an IPv6 host name; a socket wants it bare.
  const hostname = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  return { hostname, port, host: `${parsed.hostname}:${port}` };
}
