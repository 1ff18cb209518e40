/**
 * Narratives (`text`, status `generated`) of the FHIR resources we write. R4 says a resource
 * should carry one (dom-6) so that a system that does not understand the coded content can still
 * show a person what it says; EHR viewers show the narrative first. Each is made from the
 * resource itself, never from its inputs, so a resource changed later (verified, entered in
 * error) gets a narrative that says so rather than one that contradicts its status. Every value is
 * escaped: names and reasons are free text. Pure.
 */
import type { Device, Narrative, Provenance, RiskAssessment } from '@medplum/fhirtypes';

/** Escapes text for XHTML content and attribute values. */
export function escapeXhtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A generated narrative from paragraphs (already escaped) and an optional list (already escaped). */
function generated(paragraphs: readonly string[], items: readonly string[] = []): Narrative {
  const list = items.length > 0 ? `<ul>${items.map((i) => `<li>${i}</li>`).join('')}</ul>` : '';
  return {
    status: 'generated',
    div: `<div xmlns="http://www.w3.org/1999/xhtml">${paragraphs.map((p) => `<p>${p}</p>`).join('')}${list}</div>`,
  };
}

const e = escapeXhtml;

/** What a reader must know first, by status: an unverified AI result must never read as a finding. */
function statusLine(status: string | undefined): string {
  switch (status) {
    case 'preliminary':
      return '<b>Preliminary AI triage result</b>: not verified by a clinician. Not for diagnostic use.';
    case 'final':
      return '<b>AI triage result, verified by a clinician</b>.';
    case 'entered-in-error':
      return '<b>ENTERED IN ERROR</b>: this AI triage result was withdrawn. Do not use it.';
    default:
      return `<b>AI triage result</b> (status ${e(String(status))}).`;
  }
}

export function riskAssessmentNarrative(ra: RiskAssessment): Narrative {
  const paragraphs = [statusLine(ra.status)];
  const by = ra.method?.text ?? ra.performer?.display;
  const when = ra.occurrenceDateTime;
  if (by || when) paragraphs.push([by ? `Model: ${e(by)}.` : '', when ? `Produced: ${e(when)}.` : ''].filter(Boolean).join(' '));
  const items = (ra.prediction ?? []).map((p) => {
    const what = p.outcome?.text ?? p.outcome?.coding?.[0]?.display ?? 'finding';
    const risk = p.qualitativeRisk?.coding?.[0]?.display ?? p.qualitativeRisk?.text;
    const head = [`<b>${e(what)}</b>`, risk ? ` (${e(risk)})` : ''].join('');
    return p.rationale ? `${head}: ${e(p.rationale)}` : head;
  });
  for (const n of ra.note ?? []) if (n.text) paragraphs.push(e(n.text));
  return generated(paragraphs, items);
}

export function deviceNarrative(device: Device): Narrative {
  const name = device.deviceName?.[0]?.name ?? device.identifier?.[0]?.value ?? 'Device';
  const version = device.version?.[0]?.value;
  const paragraphs = [`<b>${e(name)}</b>${version ? ` version ${e(version)}` : ''}${device.type?.text ? `: ${e(device.type.text)}` : ''}.`];
  if (device.manufacturer) paragraphs.push(`Manufacturer: ${e(device.manufacturer)}.`);
  for (const n of device.note ?? []) if (n.text) paragraphs.push(e(n.text));
  return generated(paragraphs);
}

export function provenanceNarrative(provenance: Provenance): Narrative {
  const activity = provenance.activity?.coding?.[0]?.display ?? provenance.activity?.coding?.[0]?.code ?? 'activity';
  const targets = provenance.target.map((t) => t.display ?? t.type ?? t.reference ?? 'resource');
  const paragraphs = [`<b>Provenance</b>: ${e(activity)} of ${e(targets.join(', '))}, recorded ${e(provenance.recorded)}.`];
  const items = provenance.agent.map((a) => {
    const role = a.type?.coding?.[0]?.display ?? a.type?.coding?.[0]?.code ?? 'agent';
    const who = a.who.display ?? a.who.identifier?.value ?? a.who.reference ?? 'unknown';
    return `${e(role)}: ${e(who)}`;
  });
  for (const r of provenance.reason ?? []) if (r.text) paragraphs.push(`Reason: ${e(r.text)}`);
  return generated(paragraphs, items);
}
