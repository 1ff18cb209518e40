import { randomBytes } from 'node:crypto';
import { TriageError } from '../../domain/errors.ts';

/** multipart/related bodies for WADO-RS (read) and STOW-RS (write), per PS3.18 §8.6. */

export function boundaryOf(contentType: string | undefined): string {
  const match = /boundary="?([^";]+)"?/i.exec(contentType ?? '');
  if (!match?.[1]) throw new TriageError('UPSTREAM_REJECTED', `multipart answer without a boundary (content-type: ${contentType ?? 'none'})`);
  return match[1];
}

export interface Part {
  headers: Record<string, string>;
  body: Buffer;
}

export function parseMultipart(body: Buffer, boundary: string): Part[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Part[] = [];
  let start = body.indexOf(delimiter);
  while (start !== -1) {
    let cursor = start + delimiter.length;
    if (body[cursor] === 0x2d && body[cursor + 1] === 0x2d) break; // closing "--boundary--"
    if (body[cursor] === 0x0d && body[cursor + 1] === 0x0a) cursor += 2;
    const headerEnd = body.indexOf('\r\n\r\n', cursor);
    if (headerEnd === -1) break;
    const headers: Record<string, string> = {};
    for (const line of body.subarray(cursor, headerEnd).toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headerEnd + 4);
    if (next === -1) throw new TriageError('UPSTREAM_REJECTED', 'multipart answer is truncated (no closing boundary)');
    parts.push({ headers, body: body.subarray(headerEnd + 4, next) });
    start = next + 2;
  }
  return parts;
}

export function buildMultipart(parts: readonly Uint8Array[], contentType: string): { body: Buffer; contentType: string } {
  const boundary = `pacs-triage-${randomBytes(12).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${contentType}\r\n\r\n`), Buffer.from(part), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/related; type="${contentType}"; boundary=${boundary}` };
}
