// The worklist page's filters and sort as the /api/worklist query string: only values the API
// takes are sent (a half-typed one is left out rather than answered with a 400 every refresh).

const MODALITIES = /^[A-Za-z0-9]{1,16}(,[A-Za-z0-9]{1,16})*$/;
const SORTS = /^-?(priority|received|studyDate|accession|description|modality|age)$/;

/** A whole number of years in 0–200, or undefined. */
function years(value) {
  return /^\d{1,3}$/.test(value) && Number(value) <= 200 ? value : undefined;
}

/** The query string of the form's filters and sort, for one page. */
export function filterQuery(form, offset, pageSize) {
  const q = new URLSearchParams();
  const priorities = [...form.querySelectorAll('input[name=priority]:checked')].map((i) => i.value);
  if (priorities.length > 0) q.set('priority', priorities.join(','));
  if (form.status.value) q.set('status', form.status.value);
  const modality = form.modality.value.trim();
  if (MODALITIES.test(modality)) q.set('modality', modality);
  if (form.date.value) {
    // The day in this browser's time zone, as an interval of received times.
    const start = new Date(`${form.date.value}T00:00:00`);
    const end = new Date(start);
    end.setDate(end.getDate() + 1);
    q.set('since', start.toISOString());
    q.set('until', end.toISOString());
  }
  const accession = form.accession.value.trim();
  if (accession && accession.length <= 16) q.set('accession', accession);
  const description = form.description.value.trim();
  if (description && description.length <= 64) q.set('description', description);
  // The study date is the archive's own (local) day: sent as typed, no time zone to convert.
  if (form.studyDateFrom.value) q.set('studyDateFrom', form.studyDateFrom.value);
  if (form.studyDateTo.value) q.set('studyDateTo', form.studyDateTo.value);
  if (form.sex.value) q.set('sex', form.sex.value);
  const ageFrom = years(form.ageFrom.value.trim());
  const ageTo = years(form.ageTo.value.trim());
  if (ageFrom !== undefined) q.set('ageFrom', ageFrom);
  if (ageTo !== undefined) q.set('ageTo', ageTo);
  if (SORTS.test(form.sort.value) && form.sort.value !== 'priority') q.set('sort', form.sort.value);
  q.set('limit', String(pageSize));
  q.set('offset', String(offset));
  return q;
}
