import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { TlsOptions } from './client.ts';

/** `pacs.tls` / `fhir.tls` as configured: file paths, read once at start, or the PEM text inline. */
export interface TlsConfig {
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  passphrase?: string | undefined;
  rejectUnauthorized?: boolean | undefined;
}

/**
 * Reads the files a TLS configuration names. Each problem (a file missing or unreadable, not a
 * PEM certificate, a key the passphrase does not open) is pushed to `problems` with its config
 * path and file, so start-up lists them all at once instead of failing on the first request.
 */
export function readTlsFiles(config: TlsConfig | undefined, at: string, problems: string[]): TlsOptions | undefined {
  if (!config) return undefined;
  const read = (key: 'caFile' | 'certFile' | 'keyFile'): Buffer | undefined => {
    const inline = config[key.replace(/File$/, '') as 'ca' | 'cert' | 'key'];
    if (inline !== undefined) return Buffer.from(inline);
    const file = config[key];
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      problems.push(`  - ${at}.${key}: cannot read ${file}: ${(err as Error).message}`);
      return undefined;
    }
  };
  const ca = read('caFile');
  const cert = read('certFile');
  const key = read('keyFile');
  const named = (key: 'ca' | 'cert' | 'key'): string => (config[key] !== undefined ? `${at}.${key}: the inline PEM` : `${at}.${key}File: ${config[`${key}File`]}`);
  if (ca && !isCertificate(ca)) problems.push(`  - ${named('ca')} holds no PEM certificate`);
  if (cert && !isCertificate(cert)) problems.push(`  - ${named('cert')} holds no PEM certificate`);
  if (key) {
    try {
      createPrivateKey({ key, ...(config.passphrase !== undefined ? { passphrase: config.passphrase } : {}) });
    } catch (err) {
      // The message only: it never contains the passphrase or key material.
      problems.push(`  - ${named('key')} is not a private key that ${config.passphrase !== undefined ? 'the passphrase' : 'no passphrase'} opens (${(err as Error).message})`);
    }
  }
  return {
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(config.passphrase !== undefined ? { passphrase: config.passphrase } : {}),
    rejectUnauthorized: config.rejectUnauthorized ?? true,
  };
}

function isCertificate(pem: Buffer): boolean {
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
}

/** What `doctor` may say about a TLS configuration: file names and switches, never key material. */
export function describeTls(config: TlsConfig | undefined): string | undefined {
  if (!config) return undefined;
  const parts = [
    config.caFile ? `CA ${config.caFile}` : config.ca ? 'CA inline' : 'system CAs',
    ...(config.certFile ? [`client certificate ${config.certFile}`] : config.cert ? ['client certificate inline'] : []),
    ...(config.rejectUnauthorized === false ? ['certificate checking OFF'] : []),
  ];
  return `TLS: ${parts.join(', ')}`;
}
