/**
 * The context stage: which instance of the study the model reads (series selection), and the
 * clinical text that goes with it (FHIR look-ups rendered by the manifest's template), with the
 * exact resource versions that text came from — they go into the result key.
 */
import { logEvent } from '../../domain/log-events.ts';
import { NO_TEXT } from '../../config/manifest.ts';
import type { ClinicalContext, FhirResource, InstanceMeta, StudyMeta } from '../../domain/types.ts';
import type { StoredResult } from '../../domain/records.ts';
import type { PipelineDeps } from '../ports.ts';
import type { Timed } from '../timing.ts';
import { studyMetaOf } from '../encode/study-modules.ts';
import { gatherClinicalContext } from './fhir-context.ts';
import { selectInstance, type SelectedBy } from './select.ts';
import { renderClinicalText } from './text-template.ts';

export type Selection = { selected: true; instance: InstanceMeta; study: StudyMeta; selectedBy: SelectedBy } | { selected: false; reason: string };

/** The study's instances, and the one the selection rules choose (or why none). */
export async function selectStage(studyInstanceUID: string, deps: PipelineDeps, timed: Timed): Promise<Selection> {
  const instances = await timed('context.instances', () => deps.source.instances(studyInstanceUID));
  const selection = selectInstance(instances, deps.mappings.selection, deps.model.manifest.id);
  if (!selection.selected) return { selected: false, reason: selection.reason };
  return { selected: true, instance: selection.instance, study: studyMetaOf(selection.instance), selectedBy: selection.selectedBy };
}

export interface ClinicalText {
  clinical: ClinicalContext;
  text: string;
  /** The resources the text came from, with the versions that count for the result key. */
  usedVersions: { ref: string; versionId?: string }[];
  /** The study's order, when fhir.writeOrderPriority asks for its priority to be written. */
  order?: { resource: FhirResource; fromVersion?: string };
}

/**
 * The FHIR resources a result used, with their versions. The version our own priority write gave
 * the order counts as the version it had before: otherwise that write would change the key and
 * the study would be processed again for nothing.
 */
export function versionsOf(resources: readonly FhirResource[], ownWrite?: StoredResult['orderPriority']): { ref: string; versionId?: string }[] {
  return resources.map((r) => {
    const ref = `${r.resourceType}/${r.id ?? ''}`;
    let versionId = r.meta?.versionId;
    if (ownWrite && ownWrite.ref === ref && versionId !== undefined && versionId === ownWrite.toVersion) versionId = ownWrite.fromVersion;
    return { ref, ...(versionId ? { versionId } : {}) };
  });
}

/** The clinical text for the study (empty context without a clinical source). */
export async function clinicalStage(study: StudyMeta, deps: PipelineDeps, timed: Timed, previous: StoredResult | undefined): Promise<ClinicalText> {
  const { log, mappings } = deps;
  // An image-only model reads no text; the patient is still looked up, for the RiskAssessment.
  const template = deps.model.manifest.text ?? NO_TEXT;
  const now = deps.now ?? (() => new Date());
  let clinical: ClinicalContext = { resources: [] };
  if (deps.clinical) {
    const source = deps.clinical;
    clinical = await timed('context.fhir', () => gatherClinicalContext(study, source, mappings.fhir, template, now()));
  }
  const rendered = renderClinicalText(clinical.resources, template, mappings.fhir);
  for (const hit of rendered.capsHit) logEvent(log, 'context.cap_hit', { study: study.StudyInstanceUID, ...hit });
  // Why a report's attachment gave no text (its content type, charset or encoding): never the text.
  for (const u of rendered.unread) logEvent(log, 'context.text_unread', { study: study.StudyInstanceUID, resource: u.resource, reason: u.reason });
  const order = deps.writeOrderPriority && clinical.patientRef ? clinical.resources.find((r) => r.resourceType === 'ServiceRequest') : undefined;
  const fromVersion = order ? versionsOf([order], previous?.orderPriority)[0]?.versionId : undefined;
  return {
    clinical,
    text: rendered.text,
    usedVersions: versionsOf(rendered.used, previous?.orderPriority),
    ...(order ? { order: { resource: order, ...(fromVersion ? { fromVersion } : {}) } } : {}),
  };
}
