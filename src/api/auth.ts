/** Who may call the API: bearer tokens compared in constant time, and the Host header checked against an allow-list. */
import { createHash, timingSafeEqual } from 'node:crypto';
import { LOOPBACK_HOSTS } from '../domain/hosts.ts';

export { isLoopbackHost, LOOPBACK_HOSTS } from '../domain/hosts.ts';

const BEARER = /^bearer[ \t]+(\S+)[ \t]*$/i;

/**
 * Whether the Authorization header carries one of `tokens` (scheme case-insensitive, RFC 7235).
 * Both sides are hashed first, so neither the token nor its length leaks through timing.
 */
export function bearerMatches(header: string | undefined, tokens: readonly (string | undefined)[]): boolean {
  const given = header === undefined ? undefined : BEARER.exec(header)?.[1];
  const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
  const a = digest(given ?? '');
  let ok = false;
  // Every configured token is compared, whichever matches, so the time does not say which.
  for (const token of tokens) if (token !== undefined && timingSafeEqual(a, digest(token)) && given !== undefined) ok = true;
  return ok;
}

/**
 * The Host names accepted: loopback names, api.host when it is a name or address (not a
 * wildcard), and api.allowedHosts. Anything else is answered 421: a page from another origin
 * that rebinds its DNS name to this address still sends its own name as Host.
 */
export function allowedHosts(host: string, extra: readonly string[]): Set<string> {
  const names = new Set([...LOOPBACK_HOSTS, ...extra.map((h) => h.toLowerCase())]);
  if (host !== '0.0.0.0' && host !== '::' && host !== '') names.add(host.toLowerCase());
  return names;
}

/** The host name of a Host header without its port ("[::1]:8080" → "::1", "Example.org:80" → "example.org"). */
export function hostName(header: string | undefined): string | undefined {
  if (header === undefined || header === '') return undefined;
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(header) ?? /^([^:]+)(?::\d+)?$/.exec(header);
  return m?.[1]?.toLowerCase();
}
