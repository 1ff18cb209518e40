/**
 * `mappings/findings.yaml` loaded and validated (zod, every error listed with its path), plus the
 * `mappingsVersion` (SHA-256 of the file) that goes into the result key.
 *
 * `parseFindingsMappings` is pure (text in, mappings out); `loadFindingsMappings` reads the file.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { TriageError } from '../domain/errors.ts';
import { sha256Hex } from '../domain/uids.ts';
import { SR_CODE_KEYS, type FindingsMappings, type SrCodeKey } from '../domain/codes.ts';
import { formatZodIssues } from './zod-issues.ts';

const codedConcept = z
  .object({
    value: z.string().min(1).max(16, 'Code Value is SH: at most 16 characters'),
    scheme: z.string().min(1).max(16, 'Coding Scheme Designator is SH: at most 16 characters'),
    meaning: z.string().min(1).max(64, 'Code Meaning is LO: at most 64 characters'),
    schemeVersion: z.string().min(1).max(16).optional(),
  })
  .strict();

const sctConcept = codedConcept.refine((c) => c.scheme === 'SCT' && /^[1-9][0-9]{5,17}$/.test(c.value), {
  message: 'must be a SNOMED CT concept (scheme SCT, a numeric concept id)',
});

const radlexConcept = codedConcept.refine((c) => c.scheme === 'RADLEX' && /^RID[0-9]+$/.test(c.value), {
  message: 'must be a RadLex concept (scheme RADLEX, value RID<digits>)',
});


const srCodes = z
  .object({
    ...(Object.fromEntries(SR_CODE_KEYS.map((k) => [k, codedConcept])) as Record<SrCodeKey, typeof codedConcept>),
    probability: z
      .object({
        concept: codedConcept,
        unit: codedConcept.refine((c) => c.scheme === 'UCUM', { message: 'the unit must be a UCUM code' }),
        scale: z.number().positive(),
      })
      .strict(),
  })
  .strict();

/**
 * risk-probability has a `certain` code too, but a model's probability is an estimate, never
 * certainty (a calibrated 0.995 is wrong one time in two hundred): it is refused, by name.
 */
const riskBand = z
  .object({
    from: z.number().min(0).max(1),
    code: z.enum(['negligible', 'low', 'moderate', 'high'], {
      error: (issue) =>
        issue.input === 'certain'
          ? '"certain" is not a band: a model probability is never certainty (end with "high")'
          : undefined,
    }),
    display: z.string().min(1),
  })
  .strict();

const findingsFileSchema = z
  .object({
    schemaVersion: z.literal(1),
    fhirSystems: z.record(z.string().min(1), z.url()),
    findings: z
      .record(
        z.string().regex(/^[a-z][a-z0-9_]*$/, 'finding codes are lower_snake_case'),
        z.object({ concept: sctConcept, radlex: radlexConcept.optional() }).strict(),
      )
      .superRefine((findings, ctx) => {
        if (Object.keys(findings).length === 0) ctx.addIssue({ code: 'custom', message: 'at least one finding is required' });
        const seen = new Map<string, string>();
        for (const [code, f] of Object.entries(findings)) {
          const k = `${f.concept.scheme}|${f.concept.value}`;
          const other = seen.get(k);
          if (other) {
            ctx.addIssue({
              code: 'custom',
              path: [code, 'concept'],
              message: `${k} is already used by "${other}"; the SR reader maps concepts back to findings, so they must be unique`,
            });
          }
          seen.set(k, code);
        }
      }),
    procedureReported: z.object({ default: codedConcept }).strict(),
    sr: srCodes,
    fhir: z
      .object({
        riskProbability: z
          .object({
            system: z.literal('http://terminology.hl7.org/CodeSystem/risk-probability'),
            bands: z
              .array(riskBand)
              .min(1)
              .superRefine((bands, ctx) => {
                if (bands[0] && bands[0].from !== 0) {
                  ctx.addIssue({ code: 'custom', path: [0, 'from'], message: 'the first band must start at 0' });
                }
                bands.forEach((b, i) => {
                  const prev = bands[i - 1];
                  if (prev && !(b.from > prev.from)) {
                    ctx.addIssue({
                      code: 'custom',
                      path: [i, 'from'],
                      message: `bands must be in increasing order of "from" (${b.from} after ${prev.from})`,
                    });
                  }
                });
              }),
          })
          .strict(),
      })
      .strict(),
  })
  .strict()
  .superRefine((file, ctx) => {
    // Runs only when everything else parsed; the per-part checks above run regardless.
    const schemes = new Set<string>();
    for (const f of Object.values(file.findings)) {
      schemes.add(f.concept.scheme);
      if (f.radlex) schemes.add(f.radlex.scheme);
    }
    schemes.add(file.procedureReported.default.scheme);
    for (const scheme of schemes) {
      if (!(scheme in file.fhirSystems)) {
        ctx.addIssue({ code: 'custom', path: ['fhirSystems', scheme], message: `no FHIR system URI for coding scheme "${scheme}"` });
      }
    }
  });

export type FindingsFile = z.infer<typeof findingsFileSchema>;

export const DEFAULT_FINDINGS_MAPPINGS_PATH = fileURLToPath(new URL('../../mappings/findings.yaml', import.meta.url));

/** Parses and validates the mappings text; throws CONFIG_INVALID listing every problem with its path. */
export function parseFindingsMappings(text: string, source = 'mappings/findings.yaml'): FindingsMappings {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const lines = doc.errors.map((e) => `  - ${e.message.split('\n')[0]}`).join('\n');
    throw new TriageError('CONFIG_INVALID', `${source} is not valid YAML:\n${lines}`, { where: source });
  }
  const parsed = findingsFileSchema.safeParse(doc.toJS());
  if (!parsed.success) {
    throw new TriageError('CONFIG_INVALID', `${source} is invalid:\n${formatZodIssues(parsed.error.issues)}`, {
      where: source,
    });
  }
  const file = parsed.data;
  return deepFreeze({
    version: `sha256:${sha256Hex(text)}`,
    fhirSystems: file.fhirSystems,
    findings: file.findings,
    procedureReported: file.procedureReported,
    sr: file.sr,
    fhir: file.fhir,
  });
}

/** Reads and validates the mappings file (default: `mappings/findings.yaml` of this checkout). */
export function loadFindingsMappings(path: string = DEFAULT_FINDINGS_MAPPINGS_PATH): FindingsMappings {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TriageError('CONFIG_INVALID', `cannot read ${path}: ${(err as Error).message}`, { cause: err, where: path });
  }
  return parseFindingsMappings(text, path);
}

let cached: FindingsMappings | undefined;
/** The default mappings, loaded once per process. */
export function defaultFindingsMappings(): FindingsMappings {
  cached ??= loadFindingsMappings();
  return cached;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
