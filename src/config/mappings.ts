import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { TriageError } from '../domain/errors.ts';
import type { FindingsMappings } from '../domain/codes.ts';
import { loadFindingsMappings } from './findings.ts';
import { formatZodIssues } from './zod-issues.ts';

const scalar = z.union([z.string(), z.number()]);
/** A numeric range, both ends inclusive; a value that is not a number never matches. */
const range = z
  .object({ min: z.number().optional(), max: z.number().optional() })
  .strict()
  .refine((r) => r.min !== undefined || r.max !== undefined, 'a range needs min, max or both')
  .refine((r) => r.min === undefined || r.max === undefined || r.min <= r.max, 'min must not exceed max');
const matcher = z.union([scalar, range, z.array(z.union([scalar, range])).min(1)]);

/** One model's rules: the first rule that matches wins; `prefer` ranks its candidates; `gates` bound the intended use. */
const ruleSet = z.object({
  rules: z
    .array(
      z
        .object({
          name: z.string().min(1),
          /** Every attribute here must match. */
          match: z.record(z.string(), matcher),
          /**
           * At least one attribute here must match, tried in the order written; the one that did is
           * recorded with the result (several attributes may name the body part: descriptions, protocol).
           */
          matchAny: z
            .record(z.string(), matcher)
            .refine((r) => Object.keys(r).length > 0, 'matchAny needs at least one attribute')
            .optional(),
          exclude: z.record(z.string(), matcher).optional(),
        })
        .strict(),
    )
    .min(1),
  prefer: z.record(z.string(), z.array(z.string())).optional(),
  /** The model's intended use: a study outside it is skipped with the reason. */
  gates: z
    .object({
      /** Patient age in years at the study (PatientAge, else PatientBirthDate at StudyDate). */
      patientAgeYears: range.optional(),
      /** When the age cannot be told: `skip` the study or `allow` it (default allow). */
      unknownAge: z.enum(['skip', 'allow']).default('allow'),
      /** ViewPosition values the model was made for (case-insensitive); instances with another are not used. */
      viewPosition: z.array(z.string().min(1)).min(1).optional(),
    })
    .strict()
    .optional(),
});

/** Top level: the default rules; `models` holds rules per model id that replace them for that model. */
export const selectionSchema = ruleSet.extend({
  version: z.literal(1),
  models: z.record(z.string().min(1), ruleSet).optional(),
});

/** How reports are found; see mappings/fhir.yaml for what each one asks and why. */
export const REPORT_LOOKUPS = ['patientDate', 'basedOn', 'imagingStudy'] as const;
/** Where a DiagnosticReport's text is read, in order of preference. */
export const REPORT_TEXT_SOURCES = ['conclusion', 'presentedForm'] as const;
const REPORT_STATUSES = ['registered', 'partial', 'preliminary', 'final', 'amended', 'corrected', 'appended', 'cancelled', 'entered-in-error', 'unknown'] as const;
const unique = <T>(items: readonly T[]): boolean => new Set(items).size === items.length;

export const fhirMappingSchema = z.object({
  version: z.literal(1),
  patient: z
    .object({
      identifierSystem: z.string().min(1),
      /** IssuerOfPatientID → the identifier system of that issuer's PatientIDs. */
      issuers: z.record(z.string().min(1), z.string().min(1)).default({}),
      /** A study whose IssuerOfPatientID is not in `issuers`: search `identifierSystem`, or find no patient. */
      unknownIssuer: z.enum(['identifierSystem', 'noPatient']).default('identifierSystem'),
    })
    .strict(),
  order: z.object({ accessionType: z.object({ system: z.string().min(1), code: z.string().min(1) }) }),
  reports: z
    .object({
      lookbackDays: z.number().int().positive(),
      max: z.number().int().positive(),
      by: z.array(z.enum(REPORT_LOOKUPS)).min(1).refine(unique, 'each lookup at most once').default(['patientDate']),
      /** The server's DiagnosticReport search parameter for ImagingStudy (R4 defines none; R5 calls it `study`). */
      imagingStudyParam: z.string().regex(/^[a-z][a-z0-9-]*$/, 'a search parameter name').optional(),
      text: z.array(z.enum(REPORT_TEXT_SOURCES)).min(1).refine(unique, 'each source at most once').default(['conclusion']),
      /** Statuses a report about this very study may have and still be read (never a final reading). */
      thisStudyStatuses: z
        .array(z.enum(REPORT_STATUSES))
        .refine((s) => !s.some((x) => ['final', 'amended', 'corrected', 'appended'].includes(x)), 'a final (amended, corrected, appended) report of the study itself is its answer, not its context')
        .default(['preliminary']),
    })
    .strict(),
  observations: z
    .object({
      lookbackDays: z.number().int().positive(),
      max: z.number().int().positive(),
      /** One search per code of the manifest (and one result per code where it wants the latest only). */
      searchPerCode: z.boolean().default(false),
    })
    .strict(),
  caps: z
    .object({ maxResources: z.number().int().positive().default(200), maxChars: z.number().int().positive().default(20_000) })
    .strict()
    .default({ maxResources: 200, maxChars: 20_000 }),
});

export const prioritySchema = z.object({
  version: z.literal(1),
  rules: z.array(
    z.object({
      finding: z.string().min(1),
      minProbability: z.number().min(0).max(1),
      priority: z.enum(['stat', 'asap', 'urgent', 'routine']),
    }),
  ),
});

export type SelectionRules = z.infer<typeof selectionSchema>;
export type SelectionRuleSet = z.infer<typeof ruleSet>;
export type FhirMapping = z.infer<typeof fhirMappingSchema>;
export type ReportLookup = (typeof REPORT_LOOKUPS)[number];
export type ReportTextSource = (typeof REPORT_TEXT_SOURCES)[number];
export type PriorityRules = z.infer<typeof prioritySchema>;

export interface Mappings {
  selection: SelectionRules;
  fhir: FhirMapping;
  priority: PriorityRules;
  /** Finding codes (SNOMED CT, RadLex), SR and FHIR codes: mappings/findings.yaml. */
  findings: FindingsMappings;
  /** Hash of the mapping files: part of every result key, so changed rules give a new result. */
  version: string;
}

const FILES = {
  selection: ['series-selection.yaml', selectionSchema],
  fhir: ['fhir.yaml', fhirMappingSchema],
  priority: ['priority.yaml', prioritySchema],
} as const;

/** Loads and validates every mapping file at start-up; all problems of all files in one error. */
export function loadMappings(dir: string, findingCodes?: readonly string[]): Mappings {
  const problems: string[] = [];
  const hash = createHash('sha256');
  const out: Partial<Record<keyof typeof FILES, unknown>> = {};
  for (const [key, [file, schema]] of Object.entries(FILES) as [keyof typeof FILES, (typeof FILES)[keyof typeof FILES]][]) {
    const full = path.join(dir, file);
    let text: string;
    try {
      text = readFileSync(full, 'utf8');
    } catch (err) {
      problems.push(`  - ${full}: ${(err as Error).message}`);
      continue;
    }
    hash.update(file).update('\0').update(text).update('\0');
    let raw: unknown;
    try {
      raw = YAML.parse(text);
    } catch (err) {
      problems.push(`  - ${full}: ${(err as Error).message}`);
      continue;
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) problems.push(`${full}:\n${formatZodIssues(parsed.error.issues)}`);
    else out[key] = parsed.data;
  }
  let findings: FindingsMappings | undefined;
  try {
    findings = loadFindingsMappings(path.join(dir, 'findings.yaml'));
    hash.update(findings.version);
  } catch (err) {
    problems.push(`  - ${(err as Error).message}`);
  }
  const priority = out.priority as PriorityRules | undefined;
  if (priority && findingCodes) {
    priority.rules.forEach((rule, i) => {
      if (!findingCodes.includes(rule.finding)) {
        problems.push(`  - ${path.join(dir, 'priority.yaml')}: rules.${i}.finding: "${rule.finding}" is not a finding of the model (${findingCodes.join(', ')})`);
      }
    });
  }
  const selection = out.selection as SelectionRules | undefined;
  const ruleSets = selection ? [['', selection] as const, ...Object.entries(selection.models ?? {}).map(([id, set]) => [`models.${id}.`, set] as const)] : [];
  for (const [prefix, set] of ruleSets) {
    set.rules.forEach((rule, i) => {
      for (const [field, value] of [rule.match, rule.matchAny ?? {}, rule.exclude ?? {}].flatMap((m) => Object.entries(m))) {
        for (const v of Array.isArray(value) ? value : [value]) {
          if (typeof v === 'string' && v.length > 1 && v.startsWith('/') && v.endsWith('/')) {
            try {
              new RegExp(v.slice(1, -1), 'i');
            } catch (err) {
              problems.push(`  - ${path.join(dir, 'series-selection.yaml')}: ${prefix}rules.${i}.${field}: ${(err as Error).message}`);
            }
          }
        }
      }
    });
  }
  if (problems.length > 0) throw new TriageError('CONFIG_INVALID', `mappings in ${dir} are invalid:\n${problems.join('\n')}`);
  return {
    selection: out.selection as SelectionRules,
    fhir: out.fhir as FhirMapping,
    priority: out.priority as PriorityRules,
    findings: findings as FindingsMappings,
    version: hash.digest('hex').slice(0, 16),
  };
}
