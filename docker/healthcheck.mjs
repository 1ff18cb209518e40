// The image's HEALTHCHECK: GET /healthz on the API (the image has no curl). Exit 0 when it
// answers 2xx, 1 otherwise. The port and host come from the same environment variables as the
// service's configuration (PACS_TRIAGE_API__PORT, PACS_TRIAGE_API__HOST); a wildcard host is
// reached on loopback. Set the port with the variable, not only in a --config file, or this
// check looks at the default 8080.
const port = Number(process.env.PACS_TRIAGE_API__PORT ?? 8080);
const host = process.env.PACS_TRIAGE_API__HOST ?? '127.0.0.1';
const target = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host;
const url = `http://${target.includes(':') ? `[${target}]` : target}:${port}/healthz`;

let ok = false;
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(4_000) });
  ok = res.ok;
  if (!ok) console.error(`healthcheck: ${url} answered ${res.status}`);
} catch (err) {
  console.error(`healthcheck: ${url}: ${err instanceof Error ? err.message : String(err)}`);
}
// Exit now rather than wait for an idle keep-alive socket.
process.exit(ok ? 0 : 1);
