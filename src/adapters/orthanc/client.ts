import { createHash } from 'node:crypto';
import { TriageError } from '../../domain/errors.ts';
import { HttpClient, type Auth, type TlsOptions } from '../http/client.ts';

export interface OrthancChange {
  seq: number;
  changeType: string;
  resourceType: string;
  orthancId: string;
}

export interface OrthancOptions {
  baseUrl: string;
  auth?: Auth;
  timeoutMs: number;
  tls?: TlsOptions | undefined;
  /** limits.upstream.pacsResponseBytes. */
  maxResponseBytes?: number;
}

/**
 * Orthanc's own REST API, for what DICOMweb cannot do: the /changes feed and user metadata
 * (Orthanc 1.10 has no labels). The metadata name must be declared under "UserMetadata" in
 * Orthanc's configuration (docker/orthanc/ has it).
 */
export const PRIORITY_METADATA = 'PacsTriagePriority';
export const RESULT_METADATA = 'PacsTriageResult';

/**
 * The "UserMetadata" declaration pacs-triage needs in orthanc.json: our names with indices in
 * Orthanc's user range (1024–65535). Any free indices would do; these are the ones
 * docker/orthanc/orthanc.json and the test Orthanc use, and the ones `doctor` tells a site to add.
 */
export const USER_METADATA_DECLARATION = { [PRIORITY_METADATA]: 4100, [RESULT_METADATA]: 4101 } as const;

/**
 * A study id Orthanc can never have generated (its ids are SHA-1 digests: five dashed groups of
 * eight hex digits), so a PUT of metadata on it cannot reach a patient's study.
 */
const PROBE_STUDY_ID = 'pacs-triage-doctor-probe';
/** OrthancStatus in an error body (HttpDescribeErrors, on by default): "Unknown resource". */
const ORTHANC_UNKNOWN_RESOURCE = 17;
/** OrthancStatus "Inexistent item": what 1.10 answers for a metadata name nobody declared. */
const ORTHANC_INEXISTENT_ITEM = 7;

/**
 * What Orthanc said about a user metadata name: `declared`, `undeclared`, or `unknown` when its
 * answer does not tell (no error description, another status); `status` is the HTTP status.
 */
export interface MetadataNameProbe {
  name: string;
  verdict: 'declared' | 'undeclared' | 'unknown';
  status: number;
}

export interface OrthancSystem {
  Version: string;
  DicomAet?: string;
  PluginsEnabled?: boolean;
  /** 1.9.2+: metadata writes then need If-Match once the metadata exists. */
  CheckRevisions?: boolean;
}

/**
 * Orthanc's identifier of a study: the SHA-1 of "PatientID|StudyInstanceUID" in five dashed
 * groups of eight hex digits (Orthanc's DicomInstanceHasher), from the values as Orthanc
 * stores them (padding stripped).
 */
export function orthancStudyId(patientId: string, studyInstanceUID: string): string {
  return orthancHash([patientId, studyInstanceUID]);
}

/** Orthanc's identifier of an instance: the same hash over "PatientID|Study|Series|SOP Instance UID". */
export function orthancInstanceId(patientId: string, studyInstanceUID: string, seriesInstanceUID: string, sopInstanceUID: string): string {
  return orthancHash([patientId, studyInstanceUID, seriesInstanceUID, sopInstanceUID]);
}

function orthancHash(values: string[]): string {
  const hex = createHash('sha1').update(values.map((v) => v.trim()).join('|'), 'utf8').digest('hex');
  return hex.match(/.{8}/g)!.join('-');
}

export class OrthancClient {
  readonly http: HttpClient;

  constructor(options: OrthancOptions) {
    this.http = new HttpClient({
      baseUrl: options.baseUrl,
      auth: options.auth,
      timeoutMs: options.timeoutMs,
      name: 'pacs',
      ...(options.tls ? { tls: options.tls } : {}),
      ...(options.maxResponseBytes !== undefined ? { maxResponseBytes: options.maxResponseBytes } : {}),
    });
  }

  async changes(since: number, limit: number): Promise<{ changes: OrthancChange[]; last: number; done: boolean }> {
    const answer = await this.http.json<{ Changes: { Seq: number; ChangeType: string; ResourceType: string; ID: string }[]; Last: number; Done: boolean }>({
      path: 'changes',
      query: { since, limit },
    });
    return {
      changes: answer.Changes.map((c) => ({ seq: c.Seq, changeType: c.ChangeType, resourceType: c.ResourceType, orthancId: c.ID })),
      last: answer.Last,
      done: answer.Done,
    };
  }

  async studyInstanceUID(orthancStudyId: string): Promise<string | undefined> {
    const res = await this.http.request({ path: `studies/${encodeURIComponent(orthancStudyId)}` });
    if (res.status === 404) return undefined; // deleted since the change was logged
    if (res.status !== 200) throw this.http.errorFor({ path: `studies/${orthancStudyId}` }, res);
    const study = JSON.parse(res.body.toString('utf8')) as { MainDicomTags?: { StudyInstanceUID?: string } };
    return study.MainDicomTags?.StudyInstanceUID;
  }

  /**
   * The series (its DICOM UID) and Orthanc's id of the study an instance belongs to; undefined
   * when the instance was deleted since its change was logged. One request, answered from
   * Orthanc's index (not the file).
   */
  async instanceSeries(orthancInstanceId: string): Promise<{ seriesInstanceUID: string; orthancStudyId: string; modality?: string } | undefined> {
    const path = `instances/${encodeURIComponent(orthancInstanceId)}/series`;
    const res = await this.http.request({ path });
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw this.http.errorFor({ path }, res);
    const series = JSON.parse(res.body.toString('utf8')) as { ParentStudy?: string; MainDicomTags?: { SeriesInstanceUID?: string; Modality?: string } };
    if (!series.ParentStudy || !series.MainDicomTags?.SeriesInstanceUID) return undefined;
    const modality = series.MainDicomTags.Modality;
    return { seriesInstanceUID: series.MainDicomTags.SeriesInstanceUID, orthancStudyId: series.ParentStudy, ...(modality ? { modality } : {}) };
  }

  async findStudy(studyInstanceUID: string): Promise<string | undefined> {
    const hits = await this.http.json<{ ID: string; Type: string }[]>({ method: 'POST', path: 'tools/lookup', body: studyInstanceUID });
    return hits.find((h) => h.Type === 'Study')?.ID;
  }

  async setStudyMetadata(orthancStudyId: string, name: string, value: string): Promise<void> {
    await this.http.expectOk({ method: 'PUT', path: `studies/${encodeURIComponent(orthancStudyId)}/metadata/${name}`, body: value });
  }

  async studyMetadata(orthancStudyId: string, name: string): Promise<string | undefined> {
    const res = await this.http.request({ path: `studies/${encodeURIComponent(orthancStudyId)}/metadata/${name}` });
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw this.http.errorFor({ path: `studies/${orthancStudyId}/metadata/${name}` }, res);
    return res.body.toString('utf8');
  }

  async system(): Promise<OrthancSystem> {
    return this.http.json({ path: 'system' });
  }

  /**
   * Whether Orthanc knows a user metadata name and lets us write it, without writing anything:
   * a PUT of the metadata on a study that cannot exist (PROBE_STUDY_ID). Orthanc 1.10 resolves
   * the name before it looks the study up, so (measured, with HttpDescribeErrors on, Orthanc's
   * default) a declared name answers 404 OrthancStatus 17 "Unknown resource" and an undeclared
   * one 404 OrthancStatus 7 "Inexistent item" — the answer every write of it gets on a real
   * study. A refused user gets 401/403 before either. Orthanc 1.10 has no call that lists the
   * declared names. Left open (nothing is written): a write refused per study (an authorization
   * plugin that allows the route but not the patient), a full disk, a database error.
   */
  async probeMetadataName(name: string): Promise<MetadataNameProbe> {
    const res = await this.http.request({ method: 'PUT', path: `studies/${PROBE_STUDY_ID}/metadata/${encodeURIComponent(name)}`, body: 'pacs-triage doctor' });
    let orthancStatus: unknown;
    try {
      orthancStatus = (JSON.parse(res.body.toString('utf8')) as { OrthancStatus?: unknown }).OrthancStatus;
    } catch {
      orthancStatus = undefined; // no error description: the verdict stays unknown
    }
    const verdict =
      res.status === 404 && orthancStatus === ORTHANC_UNKNOWN_RESOURCE ? 'declared' : res.status === 404 && orthancStatus === ORTHANC_INEXISTENT_ITEM ? 'undeclared' : 'unknown';
    return { name, verdict, status: res.status };
  }

  async plugins(): Promise<string[]> {
    return this.http.json({ path: 'plugins' });
  }

  async uploadInstance(part10: Uint8Array): Promise<{ ID: string; ParentStudy: string; Status: string }> {
    const res = await this.http.expectOk({ method: 'POST', path: 'instances', body: part10, headers: { 'content-type': 'application/dicom' } });
    const answer = JSON.parse(res.body.toString('utf8')) as { ID: string; ParentStudy: string; Status: string };
    if (answer.Status === 'Failure') throw new TriageError('UPSTREAM_REJECTED', 'Orthanc refused the instance');
    return answer;
  }

  close(): void {
    this.http.close();
  }
}
