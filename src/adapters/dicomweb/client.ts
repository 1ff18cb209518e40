import { TriageError } from '../../domain/errors.ts';
import type { InstanceMeta } from '../../domain/types.ts';
import { HttpClient, type Auth, type HttpRequest, type HttpResponse } from '../http/client.ts';
import { instanceMetaOf, naturalize, type DicomJson } from './dicom-json.ts';
import { boundaryOf, buildMultipart, parseMultipart } from './multipart.ts';

/** Attributes QIDO is asked to include for instances: what series selection and the SR need. */
export const INSTANCE_FIELDS = [
  '00080016', '00080018', '00080020', '00080030', '00080050', '00080060', '00080070', '00080090', '00081030', '0008103E',
  '00080008', '00100010', '00100020', '00100021', '00100030', '00100040', '00101010', '00180015', '00185101', '0020000D',
  '0020000E', '00200010', '00200011', '00200013', '00280010', '00280011',
];

export interface DicomWebOptions {
  /** The DICOMweb root, e.g. http://orthanc:8042/dicom-web */
  baseUrl: string;
  auth?: Auth;
  timeoutMs: number;
}

/** QIDO-RS, WADO-RS and STOW-RS (PS3.18) on our own HTTP client; see http/client.ts for why. */
export class DicomWebClient {
  readonly http: HttpClient;

  constructor(options: DicomWebOptions) {
    this.http = new HttpClient({ baseUrl: options.baseUrl, auth: options.auth, timeoutMs: options.timeoutMs, name: 'pacs' });
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
    return list.map((json) => instanceMetaOf(naturalize(json)));
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
   * One instance as Part 10 bytes, in the transfer syntax the PACS stored (`transfer-syntax=*`):
   * Orthanc 1.10 answers 500 when asked to transcode JPEG 2000, so we never ask it to transcode
   * and decode locally instead.
   */
  async retrieveInstance(study: string, series: string, sop: string): Promise<Buffer> {
    const res = await this.http.expectOk({
      path: `studies/${encodeURIComponent(study)}/series/${encodeURIComponent(series)}/instances/${encodeURIComponent(sop)}`,
      headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
    });
    const parts = parseMultipart(res.body, boundaryOf(res.headers['content-type']));
    const first = parts[0];
    if (first === undefined) throw new TriageError('UPSTREAM_REJECTED', `pacs WADO-RS returned no part for instance ${sop}`);
    return first.body;
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
