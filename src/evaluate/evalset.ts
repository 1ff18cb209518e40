import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { TriageError } from '../domain/errors.ts';
import type { FhirResource } from '../domain/types.ts';
import { formatZodIssues } from '../config/zod-issues.ts';

/** The documented evaluation-set format (models/README.md): index.json + DICOM + FHIR Bundle per case. */
const indexSchema = z.object({
  format: z.literal('pacs-triage-evalset/1'),
  findings: z.array(z.string()).min(1),
  cases: z
    .array(
      z.object({
        id: z.string().min(1),
        dicom: z.string().min(1),
        fhir: z.string().min(1).optional(),
        labels: z.record(z.string(), z.union([z.literal(0), z.literal(1)])),
        text: z.string().optional(),
        inputIds: z.array(z.number().int()).optional(),
      }),
    )
    .min(1),
});

export type EvalIndex = z.infer<typeof indexSchema>;
export type EvalCase = EvalIndex['cases'][number];

export async function readEvalIndex(dir: string): Promise<EvalIndex> {
  const file = path.join(dir, 'index.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new TriageError('USAGE', `cannot read evaluation set ${file}: ${(err as Error).message}`, { cause: err });
  }
  const parsed = indexSchema.safeParse(raw);
  if (!parsed.success) throw new TriageError('USAGE', `${file} is not a pacs-triage-evalset/1 index:\n${formatZodIssues(parsed.error.issues)}`);
  return parsed.data;
}

/** The resources of a FHIR Bundle (collection, transaction or searchset), or a single resource. */
export function resourcesOf(json: unknown): FhirResource[] {
  const value = json as { resourceType?: string; entry?: { resource?: FhirResource }[] };
  if (value?.resourceType === 'Bundle') {
    return (value.entry ?? []).flatMap((e) => (e.resource && typeof e.resource.resourceType === 'string' ? [e.resource] : []));
  }
  if (typeof value?.resourceType === 'string') return [value as FhirResource];
  throw new TriageError('FHIR_INVALID', 'not a FHIR resource or Bundle (no resourceType)');
}
