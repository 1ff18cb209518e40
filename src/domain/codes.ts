/**
 * Coded concepts: the shape of the findings mappings (`mappings/findings.yaml`, loaded and
 * validated by config/findings.ts) and the pure look-ups the encoders make in them. Reads no files.
 */
import { TriageError } from './errors.ts';

/** A DICOM coded entry (PS3.3 8.8): Code Value, Coding Scheme Designator, Code Meaning. */
export interface CodedConcept {
  value: string;
  scheme: string;
  meaning: string;
  schemeVersion?: string;
}

/** A FHIR Coding. */
export interface FhirCoding {
  system: string;
  code: string;
  display: string;
}

export const SR_CODE_KEYS = [
  'documentTitle',
  'language',
  'languageValue',
  'observerType',
  'observerTypeDevice',
  'deviceObserverUid',
  'deviceObserverName',
  'deviceObserverManufacturer',
  'deviceObserverModelName',
  'procedureReported',
  'imageLibrary',
  'imageLibraryGroup',
  'imagingMeasurements',
  'measurementGroup',
  'qualitativeEvaluations',
  'trackingIdentifier',
  'trackingUniqueIdentifier',
  'finding',
  'presence',
  'present',
  'absent',
  'imageRegion',
  'algorithmName',
  'algorithmVersion',
  'algorithmParameters',
  'processingAlgorithm',
] as const;

export type SrCodeKey = (typeof SR_CODE_KEYS)[number];

export interface FindingCodes {
  concept: CodedConcept;
  radlex?: CodedConcept;
}

export interface RiskBand {
  from: number;
  /** risk-probability codes; never `certain` (config/findings.ts refuses it: a model is never certain). */
  code: 'negligible' | 'low' | 'moderate' | 'high';
  display: string;
}

/** The validated mappings, with the version that goes into the result key. */
export interface FindingsMappings {
  /** `sha256:<hex>` of the file text. */
  version: string;
  fhirSystems: Readonly<Record<string, string>>;
  findings: Readonly<Record<string, FindingCodes>>;
  procedureReported: { default: CodedConcept };
  sr: Readonly<Record<SrCodeKey, CodedConcept>> & {
    probability: { concept: CodedConcept; unit: CodedConcept; scale: number };
  };
  fhir: { riskProbability: { system: string; bands: readonly RiskBand[] } };
}

/** The mappings version (for the result key) of a mappings object. */
export function mappingsVersion(mappings: Pick<FindingsMappings, 'version'>): string {
  return mappings.version;
}

/** The coded concepts of a model finding; CONFIG_INVALID when the mappings do not cover it. */
export function findingCodes(mappings: FindingsMappings, findingCode: string): FindingCodes {
  const codes = mappings.findings[findingCode];
  if (!codes) {
    throw new TriageError(
      'CONFIG_INVALID',
      `mappings/findings.yaml has no entry for model finding "${findingCode}" (known: ${Object.keys(mappings.findings).join(', ')})`,
      { where: 'mappings/findings.yaml' },
    );
  }
  return codes;
}

/** The finding code whose concept is `concept` (scheme + value), if any. */
export function findingCodeForConcept(mappings: FindingsMappings, concept: Pick<CodedConcept, 'value' | 'scheme'>): string | undefined {
  for (const [code, f] of Object.entries(mappings.findings)) {
    if (sameConcept(f.concept, concept)) return code;
  }
  return undefined;
}

/**
 * Equality of coded concepts by value and scheme. SNOMED's legacy designator SRT and the current
 * SCT are not interchangeable code values (SRT used SNOMED-RT ids), so they are not conflated.
 */
export function sameConcept(a: Pick<CodedConcept, 'value' | 'scheme'>, b: Pick<CodedConcept, 'value' | 'scheme'>): boolean {
  return a.value === b.value && a.scheme === b.scheme;
}

/** A DICOM coded concept as a FHIR Coding (CONFIG_INVALID when the scheme has no FHIR system). */
export function toFhirCoding(mappings: FindingsMappings, concept: CodedConcept): FhirCoding {
  const system = mappings.fhirSystems[concept.scheme];
  if (!system) {
    throw new TriageError('CONFIG_INVALID', `no FHIR system for coding scheme "${concept.scheme}"`, {
      where: 'mappings/findings.yaml',
    });
  }
  return { system, code: concept.value, display: concept.meaning };
}

/** The risk-probability band of a probability in [0, 1]. */
export function riskBandFor(mappings: FindingsMappings, probability: number): RiskBand {
  if (!Number.isFinite(probability) || probability < 0 || probability > 1) {
    throw new TriageError('INTERNAL', `probability ${probability} is outside [0, 1]`, { where: 'domain.codes' });
  }
  const bands = mappings.fhir.riskProbability.bands;
  let found: RiskBand | undefined;
  for (const b of bands) {
    if (probability >= b.from) found = b;
  }
  // The schema guarantees a first band starting at 0.
  return found as RiskBand;
}

