import { TriageError } from '../../domain/errors.ts';
import type { InstanceMeta } from '../../domain/types.ts';
import { HttpClient, type Auth, type TlsOptions, type HttpRequest, type HttpResponse } from '../http/client.ts';
import { naturalize, type DicomJson } from '../../dicom/json.ts';
import { QIDO_INSTANCE_FIELDS } from '../../dicom/attributes.ts';
import { instanceMeta } from '../../dicom/instance-meta.ts';
import { boundaryOf, buildMultipart, parseMultipart, type Part } from './multipart.ts';
import { datasetOffset, metaTransferSyntax } from '../../dicom/structure.ts';

export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
/** `pacs.retrieveTransferSyntax`. */
export type RetrieveTransferSyntax = 'explicit-le-first' | 'stored';
/** What a PACS answers when it will not or cannot transcode (Orthanc 1.10: 500 for JPEG 2000). */
const TRANSCODE_REFUSED = new Set([406, 415, 500, 501]);
const ACCEPT_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*';
const ACCEPT_EXPLICIT_LE = `multipart/related; type="application/dicom"; transfer-syntax=${EXPLICIT_VR_LITTLE_ENDIAN}`;
/** The boundary of the empty STOW-RS `stowProbe` sends (fixed: the request is the same every time). */
export const PROBE_BOUNDARY = 'pacs-triage-doctor';
/** Series whose stored syntax we learnt, kept for the skip below; oldest forgotten first. */
const MAX_SERIES_REMEMBERED = 4096;

/** Attributes QIDO is asked to include for instances: what series selection and the SR need. */
export const INSTANCE_FIELDS = QIDO_INSTANCE_FIELDS;

export interface DicomWebOptions {
  /** The DICOMweb root, e.g. http://orthanc:8042/dicom-web */
  baseUrl: string;
  auth?: Auth;
  timeoutMs: number;
  tls?: TlsOptions | undefined;
  /** Default explicit-le-first. */
  retrieveTransferSyntax?: RetrieveTransferSyntax;
  /** limits.upstream.pacsResponseBytes. */
  maxResponseBytes?: number;
}

/** QIDO-RS, WADO-RS and STOW-RS (PS3.18) on our own HTTP client; see http/client.ts for why. */
export class DicomWebClient {
  readonly http: HttpClient;
  retrieveTransferSyntax: RetrieveTransferSyntax;
  /** Stored syntaxes this PACS failed to transcode: later instances in them skip the doomed request. */
  private readonly untranscodable = new Set<string>();
  /** The stored syntax of series already retrieved from (instances of a series share it, as a rule). */
  private readonly seriesSyntax = new Map<string, string>();

  constructor(options: DicomWebOptions) {
    this.retrieveTransferSyntax = options.retrieveTransferSyntax ?? 'explicit-le-first';
    this.http = new HttpClient({
      baseUrl: options.baseUrl,
      auth: options.auth,
      timeoutMs: options.timeoutMs,
      name: 'pacs',
      ...(options.tls ? { tls: options.tls } : {}),
      ...(options.maxResponseBytes !== undefined ? { maxResponseBytes: options.maxResponseBytes } : {}),
    });
  }

  /** Every instance of a study with the attributes in INSTANCE_FIELDS, keyword-named. */
  async studyInstances(studyInstanceUID: string): Promise<InstanceMeta[]> {
    const req = {
      path: `studies/${encodeURIComponent(studyInstanceUID)}/instances`,
      query: { includefield: INSTANCE_FIELDS },
      headers: { accept: 'application/dicom+json' },
    };
    const res = await this.http.request(req);
    if (res.status === 204 || res.status === 404) return [];
    if (res.status < 200 || res.status >= 300) throw this.http.errorFor(req, res);
    const list = res.body.length === 0 ? [] : (JSON.parse(res.body.toString('utf8')) as DicomJson[]);
    // An instance the PACS lists without its UIDs cannot be retrieved or referenced: left out.
    // When that leaves nothing of a non-empty answer, the PACS's answer itself is the problem.
    const metas = list.flatMap((json) => {
      try {
        return [instanceMeta(naturalize(json), 'pacs.qido')];
      } catch {
        return [];
      }
    });
    if (metas.length === 0 && list.length > 0) {
      throw new TriageError('UPSTREAM_REJECTED', `pacs QIDO-RS listed ${list.length} instance(s) of the study, none with its StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID and SOPClassUID`);
    }
    return metas;
  }

  /** One page of a QIDO-RS study search, as DICOM JSON (`query` holds the matching keys and includefield). */
  async searchStudies(query: NonNullable<HttpRequest['query']>, page: { limit: number; offset: number }): Promise<DicomJson[]> {
    const req = { path: 'studies', query: { ...query, limit: page.limit, offset: page.offset }, headers: { accept: 'application/dicom+json' } };
    const res = await this.http.request(req);
    if (res.status === 204) return [];
    if (res.status < 200 || res.status >= 300) throw this.http.errorFor(req, res);
    return res.body.length === 0 ? [] : (JSON.parse(res.body.toString('utf8')) as DicomJson[]);
  }

  /** The cheapest authenticated QIDO-RS call: for doctor and /readyz. */
  ping(timeoutMs?: number): Promise<HttpResponse> {
    return this.http.expectOk({
      path: 'studies',
      query: { limit: 1 },
      headers: { accept: 'application/dicom+json' },
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    });
  }

  /**
   * One instance as Part 10 bytes. With `explicit-le-first` the PACS is asked for Explicit VR
   * Little Endian (every decoder handles it, and the PACS's codecs may know syntaxes ours do
   * not); when it refuses or fails (406/415/500/501 — Orthanc 1.10 answers 500 for JPEG 2000),
   * the stored syntax (`transfer-syntax=*`) is asked for and decoded locally. A PACS that
   * answers 200 in another syntax than asked has sent the stored one: that part is used as it
   * is, since asking again would fetch the same bytes. Either way the syntax is remembered, so
   * further instances of the series skip the doomed first request. `stored` asks for the stored
   * syntax only: no transcoding load on the PACS.
   */
  async retrieveInstance(study: string, series: string, sop: string): Promise<Buffer> {
    const path = `studies/${encodeURIComponent(study)}/series/${encodeURIComponent(series)}/instances/${encodeURIComponent(sop)}`;
    const known = this.seriesSyntax.get(series);
    if (this.retrieveTransferSyntax === 'stored' || (known !== undefined && this.untranscodable.has(known))) {
      return (await this.retrieveAs(path, sop, ACCEPT_STORED)).body;
    }
    const req = { path, headers: { accept: ACCEPT_EXPLICIT_LE } };
    const res = await this.http.request(req);
    if (res.status >= 200 && res.status < 300) {
      const part = this.firstPart(res, sop);
      const syntax = partSyntax(part);
      if (syntax !== undefined && syntax !== EXPLICIT_VR_LITTLE_ENDIAN) this.learn(series, syntax);
      return part.body;
    }
    if (!TRANSCODE_REFUSED.has(res.status)) throw this.http.errorFor(req, res);
    const part = await this.retrieveAs(path, sop, ACCEPT_STORED);
    const stored = partSyntax(part);
    // Refused for an instance already in Explicit VR LE: not a transcoding problem, nothing to learn.
    if (stored !== undefined && stored !== EXPLICIT_VR_LITTLE_ENDIAN) this.learn(series, stored);
    return part.body;
  }

  private async retrieveAs(path: string, sop: string, accept: string): Promise<Part> {
    const res = await this.http.expectOk({ path, headers: { accept } });
    return this.firstPart(res, sop);
  }

  private firstPart(res: HttpResponse, sop: string): Part {
    const first = parseMultipart(res.body, boundaryOf(res.headers['content-type']))[0];
    if (first === undefined) throw new TriageError('UPSTREAM_REJECTED', `pacs WADO-RS returned no part for instance ${sop}`);
    return first;
  }

  private learn(series: string, storedSyntax: string): void {
    this.seriesSyntax.delete(series);
    this.seriesSyntax.set(series, storedSyntax);
    if (this.seriesSyntax.size > MAX_SERIES_REMEMBERED) {
      const oldest = this.seriesSyntax.keys().next().value;
      if (oldest !== undefined) this.seriesSyntax.delete(oldest);
    }
    // Bounded by the number of transfer syntaxes there are (a few dozen).
    this.untranscodable.add(storedSyntax);
  }

  /**
   * A STOW-RS of a multipart with no part: whether this user may store, storing nothing. Orthanc
   * 1.10 answers 200 with empty sequences (401 to a refused user); another PACS may answer 4xx
   * to an empty request. For `doctor`; the answer is returned as it is.
   */
  stowProbe(): Promise<HttpResponse> {
    return this.http.request({
      method: 'POST',
      path: 'studies',
      headers: { 'content-type': `multipart/related; type="application/dicom"; boundary=${PROBE_BOUNDARY}`, accept: 'application/dicom+json' },
      body: Buffer.from(`--${PROBE_BOUNDARY}--\r\n`),
    });
  }

  /** STOW-RS of Part 10 files into a study; throws unless every instance was stored. */
  async store(studyInstanceUID: string | undefined, files: readonly Uint8Array[]): Promise<void> {
    const { body, contentType } = buildMultipart(files, 'application/dicom');
    const res = await this.http.expectOk({
      method: 'POST',
      path: studyInstanceUID === undefined ? 'studies' : `studies/${encodeURIComponent(studyInstanceUID)}`,
      headers: { 'content-type': contentType, accept: 'application/dicom+json' },
      body,
    });
    const answer = res.body.length > 0 ? (JSON.parse(res.body.toString('utf8')) as DicomJson) : {};
    const failed = answer['00081198']?.Value ?? [];
    if (failed.length > 0) {
      throw new TriageError('UPSTREAM_REJECTED', `pacs STOW-RS refused ${failed.length} of ${files.length} instances`, { status: res.status });
    }
  }

  close(): void {
    this.http.close();
  }
}

/** The transfer syntax of a WADO-RS part: its content-type parameter, else its File Meta Information. */
export function partSyntax(part: Part): string | undefined {
  const param = /transfer-syntax="?([0-9.]+)"?/i.exec(part.headers['content-type'] ?? '');
  if (param?.[1]) return param[1];
  try {
    return metaTransferSyntax(part.body, datasetOffset(part.body))?.trim().replace(/\0+$/, '');
  } catch {
    return undefined; // not Part 10: the decoder will say so, with its named error
  }
}
