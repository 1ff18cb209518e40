import { describe, expect, it } from 'vitest';
import { TriageError } from '../../../src/domain/errors.ts';
import {
  MAX_UID_ROOT_LENGTH,
  assertUidRoot,
  canonicalJson,
  deriveUid,
  deterministicUuid,
  fhirResourceVersions,
  isValidUid,
  resultKey,
  srSeriesKey,
  trackingKey,
  type ResultKeyParts,
} from '../../../src/domain/uids.ts';

const parts: ResultKeyParts = {
  studyInstanceUID: '1.2.3.4',
  sourceSopInstanceUIDs: ['1.2.3.4.5.2', '1.2.3.4.5.1'],
  fhirResources: [
    { ref: 'Observation/o1', versionId: '2' },
    { ref: 'DiagnosticReport/d1', versionId: '7' },
  ],
  modelId: 'cxr',
  modelVersion: '1.0.0',
  mappingsVersion: 'sha256:abc',
};

describe('resultKey', () => {
  it('is a 64-hex sha256 digest, stable across calls', () => {
    const k = resultKey(parts);
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(resultKey({ ...parts })).toBe(k);
  });

  it('does not depend on the order of the source instances or FHIR resources', () => {
    const k = resultKey(parts);
    expect(
      resultKey({
        ...parts,
        sourceSopInstanceUIDs: [...parts.sourceSopInstanceUIDs].reverse(),
        fhirResources: [...parts.fhirResources].reverse(),
      }),
    ).toBe(k);
    expect(resultKey({ ...parts, sourceSopInstanceUIDs: [...parts.sourceSopInstanceUIDs, '1.2.3.4.5.1'] })).toBe(k);
  });

  it.each([
    ['studyInstanceUID', { studyInstanceUID: '1.2.3.9' }],
    ['a source instance', { sourceSopInstanceUIDs: ['1.2.3.4.5.1'] }],
    ['a FHIR versionId', { fhirResources: [{ ref: 'Observation/o1', versionId: '3' }, { ref: 'DiagnosticReport/d1', versionId: '7' }] }],
    ['a FHIR resource', { fhirResources: [{ ref: 'Observation/o1', versionId: '2' }] }],
    ['modelId', { modelId: 'cxr2' }],
    ['modelVersion', { modelVersion: '1.0.1' }],
    ['mappingsVersion', { mappingsVersion: 'sha256:abd' }],
  ] as const)('changes when %s changes', (_what, change) => {
    expect(resultKey({ ...parts, ...change })).not.toBe(resultKey(parts));
  });

  it('refuses missing parts', () => {
    expect(() => resultKey({ ...parts, modelVersion: '' })).toThrow(TriageError);
    expect(() => resultKey({ ...parts, sourceSopInstanceUIDs: [] })).toThrow(/source SOP Instance UID/);
  });

  it('canonical JSON sorts keys at every level and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { f: 1, e: 2 }], c: undefined } })).toBe('{"a":{"d":[3,{"e":2,"f":1}]},"b":1}');
  });

  it('fhirResourceVersions turns resources into versioned refs', () => {
    expect(
      fhirResourceVersions([
        { resourceType: 'Observation', id: 'o1', meta: { versionId: '2' } },
        { resourceType: 'DiagnosticReport', id: 'd1' },
      ]),
    ).toEqual([{ ref: 'Observation/o1', versionId: '2' }, { ref: 'DiagnosticReport/d1' }]);
    expect(() => fhirResourceVersions([{ resourceType: 'Observation' }])).toThrow(/without an id/);
  });
});

describe('isValidUid', () => {
  it.each(['1.2', '1.2.840.10008.5.1.4.1.1.88.34', '2.25.0', `1.${'9'.repeat(62)}`])('accepts %s', (uid) => {
    expect(isValidUid(uid)).toBe(true);
  });
  it.each(['', '1', '1.', '.1', '1..2', '1.02', '1.2a', '1.2 ', `1.${'9'.repeat(63)}`, 12])('rejects %s', (uid) => {
    expect(isValidUid(uid)).toBe(false);
  });
});

describe('deriveUid', () => {
  const root = '1.2.826.0.1.3680043.10.9999';
  const key = resultKey(parts);

  it('gives a valid UID under the root, 64 characters long, deterministically', () => {
    const uid = deriveUid(root, key, 'sr-instance');
    expect(isValidUid(uid)).toBe(true);
    expect(uid.startsWith(`${root}.`)).toBe(true);
    expect(uid).toHaveLength(64);
    expect(deriveUid(root, key, 'sr-instance')).toBe(uid);
  });

  it('differs by purpose and by key', () => {
    const uids = new Set([
      deriveUid(root, key, 'sr-instance'),
      deriveUid(root, key, 'sr-series'),
      deriveUid(root, key, 'tracking:pneumothorax'),
      deriveUid(root, key, 'tracking:consolidation'),
      deriveUid(root, resultKey({ ...parts, modelVersion: '2' }), 'sr-instance'),
    ]);
    expect(uids.size).toBe(5);
  });

  it('never produces an invalid UID (1000 keys, roots of every length)', () => {
    for (let i = 0; i < 1000; i++) {
      const r = `1.${'2.'.repeat(i % 18)}3`;
      const uid = deriveUid(r, `key-${i}`, 'sr-instance');
      expect(isValidUid(uid), uid).toBe(true);
      expect(uid.length).toBeLessThanOrEqual(64);
    }
  });

  it('under 2.25 makes a UUID-derived UID (a 128-bit integer with the v8 version bits)', () => {
    const uid = deriveUid('2.25', key, 'sr-instance');
    expect(isValidUid(uid)).toBe(true);
    const n = BigInt(uid.slice(5));
    expect(n < 2n ** 128n).toBe(true);
    expect((n >> 76n) & 0xfn).toBe(8n);
  });

  it.each(['', '1', '1.02.3', 'abc', '1..2', '1.2.'])('refuses the invalid root "%s" (CONFIG_INVALID)', (bad) => {
    expect(() => deriveUid(bad, key, 'sr-instance')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  it('refuses a root too long to leave room for the digest', () => {
    const long = `1.${'2'.repeat(MAX_UID_ROOT_LENGTH - 1)}`;
    expect(() => assertUidRoot(long)).toThrow(/at most/);
    expect(() => assertUidRoot(long.slice(0, MAX_UID_ROOT_LENGTH))).not.toThrow();
  });

  it('series key is stable per (study, model, device); tracking key per (study, model)', () => {
    expect(srSeriesKey('1.2', 'm', '2.25.1')).toBe(srSeriesKey('1.2', 'm', '2.25.1'));
    expect(srSeriesKey('1.2', 'm', '2.25.1')).not.toBe(srSeriesKey('1.2', 'm', '2.25.2'));
    expect(trackingKey('1.2', 'm')).not.toBe(trackingKey('1.3', 'm'));
  });

  it('deterministicUuid is a v8 UUID', () => {
    const u = deterministicUuid('x');
    expect(u).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(deterministicUuid('x')).toBe(u);
  });
});
