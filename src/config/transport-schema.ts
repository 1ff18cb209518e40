/** How pacs-triage reaches its upstreams: credentials and TLS, validated with the rest of the configuration. */
import { z } from 'zod';

const url = z.url({ protocol: /^https?$/ });

export const basicAuth = z.object({ username: z.string().min(1), password: z.string().min(1) }).strict();
export const bearerAuth = z.object({ token: z.string().min(1) }).strict();
export const pem = z.string().includes('-----BEGIN ', { message: 'must be PEM text (-----BEGIN …)' });
/** Each PEM either by path (`xFile`) or inline (`x`) — never both. */
export function oneOf(t: Record<string, unknown>, ctx: z.RefinementCtx, inline: string): void {
  if (t[inline] !== undefined && t[`${inline}File`] !== undefined) {
    ctx.addIssue({ code: 'custom', path: [inline], message: `set ${inline} or ${inline}File, not both` });
  }
}
/**
 * TLS to an https upstream. The files are read (and checked) when the servers are connected, at
 * start. `PACS_TRIAGE_FHIR__TLS__KEY_FILE=/run/secrets/key` names `keyFile` (a key of this
 * schema, so config/load.ts takes it as a path); `…__PASSPHRASE_FILE` reads the passphrase from
 * its file, as every other secret. The inline forms (`ca`, `cert`, `key`) take PEM text.
 */
export const tls = z
  .object({
    caFile: z.string().min(1).optional(),
    certFile: z.string().min(1).optional(),
    keyFile: z.string().min(1).optional(),
    ca: pem.optional(),
    cert: pem.optional(),
    key: pem.optional(),
    passphrase: z.string().min(1).optional(),
    rejectUnauthorized: z.boolean().default(true),
  })
  .strict()
  .superRefine((t, ctx) => {
    for (const inline of ['ca', 'cert', 'key']) oneOf(t, ctx, inline);
    const hasCert = t.cert !== undefined || t.certFile !== undefined;
    const hasKey = t.key !== undefined || t.keyFile !== undefined;
    if (hasCert !== hasKey) {
      ctx.addIssue({ code: 'custom', path: [hasCert ? 'keyFile' : 'certFile'], message: 'a client certificate needs both certFile and keyFile' });
    }
    if (t.passphrase !== undefined && !hasKey) ctx.addIssue({ code: 'custom', path: ['passphrase'], message: 'a passphrase needs keyFile' });
  });
/**
 * `{ token }` (a fixed bearer token) or `{ smart }` (SMART Backend Services: client_credentials
 * with a signed JWT assertion, RS384 or ES384). One object with a check rather than a union, so a
 * mistake inside `smart` is reported at its own path instead of as "Invalid input" at fhir.auth.
 */
export const fhirAuth = z
  .object({
    token: z.string().min(1).optional(),
    smart: z
      .object({
        tokenUrl: url,
        clientId: z.string().min(1),
        /**
         * PEM private key whose public half is registered with the token endpoint (under keyId);
         * inline as `privateKey` (what `PACS_TRIAGE_FHIR__AUTH__SMART__PRIVATE_KEY_FILE` gives).
         */
        privateKeyFile: z.string().min(1).optional(),
        privateKey: pem.optional(),
        keyId: z.string().min(1),
        /** Absent: what the service needs (see defaultSmartScope). */
        scope: z.string().min(1).optional(),
        /** Absent: taken from the key (RSA → RS384, EC P-384 → ES384). */
        alg: z.enum(['RS384', 'ES384']).optional(),
      })
      .strict()
      .superRefine((s, ctx) => {
        oneOf(s, ctx, 'privateKey');
        if (s.privateKey === undefined && s.privateKeyFile === undefined) ctx.addIssue({ code: 'custom', path: ['privateKeyFile'], message: 'required (or privateKey)' });
      })
      .optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    if ((a.token === undefined) === (a.smart === undefined)) ctx.addIssue({ code: 'custom', path: [], message: 'set exactly one of token or smart' });
  });
/** TLS settings only mean something on an https base URL; on http they would be silently ignored. */
export function tlsNeedsHttps(server: { baseUrl: string; tls?: unknown }, ctx: z.RefinementCtx): void {
  if (server.tls !== undefined && !server.baseUrl.startsWith('https:')) {
    ctx.addIssue({ code: 'custom', path: ['tls'], message: 'tls needs an https baseUrl' });
  }
}

/** A PostgreSQL URL that the pg driver reads; never echoed in a message (it may hold a password). */
