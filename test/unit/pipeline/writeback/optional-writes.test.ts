/** Which refusals of an optional write are configuration (a warning, the job done) and which are not (retried or failed). Pure. */
import { describe, expect, it } from 'vitest';
import { TriageError } from '../../../../src/domain/errors.ts';
import type { Level } from '../../../../src/domain/log-events.ts';
import type { StoredResult } from '../../../../src/domain/records.ts';
import { configurationRefusal, warningReason, WriteWarnings } from '../../../../src/pipeline/writeback/optional-writes.ts';
import { fullyWritten } from '../../../../src/pipeline/writeback/write-back.ts';

const undeclared = new TriageError('CONFIG_INVALID', 'Orthanc refused the study metadata', { where: 'pacs.userMetadata', status: 404 });
const http = (code: ConstructorParameters<typeof TriageError>[0], status: number): TriageError => new TriageError(code, `answered ${status}`, { status });

describe('configurationRefusal', () => {
  it('metadata not declared in Orthanc: names the UserMetadata declaration to add', () => {
    expect(configurationRefusal('metadata', undeclared)).toEqual({
      write: 'metadata',
      cause: 'pacs-metadata-undeclared',
      message: 'Orthanc does not know the study metadata PacsTriagePriority and PacsTriageResult: the triage priority is not set in the PACS',
      fix: 'declare "UserMetadata": { "PacsTriagePriority": 4100, "PacsTriageResult": 4101 } in orthanc.json and restart Orthanc',
    });
  });

  it('403 and 405 on either write are configuration; each has its own cause', () => {
    expect(configurationRefusal('metadata', http('UPSTREAM_AUTH', 403))?.cause).toBe('pacs-metadata-forbidden');
    expect(configurationRefusal('metadata', http('UPSTREAM_REJECTED', 405))?.cause).toBe('pacs-metadata-not-allowed');
    expect(configurationRefusal('order', http('UPSTREAM_AUTH', 403))).toMatchObject({ cause: 'fhir-order-forbidden', fix: expect.stringContaining('fhir.writeOrderPriority: false') });
    expect(configurationRefusal('order', http('UPSTREAM_REJECTED', 405))).toMatchObject({ cause: 'fhir-order-not-allowed', message: 'the FHIR server does not allow updating a ServiceRequest (405)' });
  });

  it('transient failures, a study gone, a conflict and other 4xx are not: they keep their retries or fail the job', () => {
    for (const e of [http('UPSTREAM_UNAVAILABLE', 503), http('UPSTREAM_TIMEOUT', 504), http('UPSTREAM_THROTTLED', 429), http('NOT_FOUND', 404), http('UPSTREAM_REJECTED', 412), new TriageError('INTERNAL', 'bug')]) {
      expect(configurationRefusal('metadata', e)).toBeUndefined();
      expect(configurationRefusal('order', e)).toBeUndefined();
    }
    // CONFIG_INVALID from elsewhere (not Orthanc's metadata) is not this warning.
    expect(configurationRefusal('metadata', new TriageError('CONFIG_INVALID', 'x'))).toBeUndefined();
  });
});

describe('a result with a refused optional write', () => {
  const base = { written: { pacs: true, fhir: true, metadata: false, order: false }, notes: [] } as unknown as StoredResult;
  it('counts as fully written once each refused write has its warning; the job reason carries the fixes', () => {
    expect(fullyWritten(base, false)).toBe(false);
    const metadata = configurationRefusal('metadata', undeclared)!;
    const order = configurationRefusal('order', http('UPSTREAM_AUTH', 403))!;
    expect(fullyWritten({ ...base, warnings: [metadata] }, false)).toBe(false);
    expect(fullyWritten({ ...base, warnings: [metadata, order] }, false)).toBe(true);
    expect(warningReason({ warnings: [metadata] })).toBe(`warning: ${metadata.message}; fix: ${metadata.fix}`);
    expect(warningReason({ warnings: [metadata, order] })?.split(' | ')).toHaveLength(2);
    expect(warningReason({})).toBeUndefined();
  });
});

describe('WriteWarnings', () => {
  it('logs a cause once, however many studies it hits, and lists it with their count', () => {
    const lines: { level: Level; fields: object }[] = [];
    const log = Object.fromEntries((['debug', 'info', 'warn', 'error'] as const).map((level) => [level, (fields: object) => lines.push({ level, fields })])) as never;
    const board = new WriteWarnings(log);
    const w = configurationRefusal('metadata', undeclared)!;
    board.report(w, '1.2.3', 1_000);
    board.report(w, '1.2.4', 2_000);
    board.report(configurationRefusal('order', http('UPSTREAM_AUTH', 403))!, '1.2.4', 3_000);
    expect(lines).toEqual([
      { level: 'warn', fields: { event: 'study.warning', study: '1.2.3', warning: `pacs-metadata-undeclared: ${w.message}`, fix: w.fix } },
      { level: 'warn', fields: expect.objectContaining({ event: 'study.warning', study: '1.2.4', warning: expect.stringMatching(/^fhir-order-forbidden: /) }) },
    ]);
    expect(board.list().map((a) => [a.warning.cause, a.studies, a.firstAt, a.lastAt])).toEqual([
      ['pacs-metadata-undeclared', 2, 1_000, 2_000],
      ['fhir-order-forbidden', 1, 3_000, 3_000],
    ]);
  });
});
