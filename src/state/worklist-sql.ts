/**
 * The worklist's study fields in SQL, shared by both engines: the study_latest columns a result
 * fills (migrations: SQLite 9, PostgreSQL 4), the filters on them and the sort orders. One text
 * for both engines, with the engine's own placeholder, so that they filter and order alike.
 */
import type { StoredResult, WorklistFilter, WorklistQuery, WorklistSortKey } from '../domain/records.ts';
import { ageInDays } from '../domain/study-fields.ts';
import { NO_PRIORITY_RANK } from './rows.ts';

/** study_latest's study columns, in the order studyColumnValues gives their values. Never the patient's name or ID. */
export const STUDY_COLUMNS = ['accession_number', 'study_description', 'study_date', 'study_time', 'patient_sex', 'patient_age_days'] as const;

export function studyColumnValues(result: StoredResult): (string | number | null)[] {
  const s = result.study ?? {};
  return [s.accessionNumber ?? null, s.studyDescription ?? null, s.studyDate ?? null, s.studyTime ?? null, s.patientSex ?? null, ageInDays(s.patientAge) ?? null];
}

/** Whole days of `years` of age (as ageInDays counts a year). */
const yearsToDays = (years: number): number => Math.floor(years * 365.25);
/** `%` and `_` in a LIKE pattern matched as themselves (escape character `!`). */
const likeEscaped = (s: string): string => s.replace(/[!%_]/g, (c) => `!${c}`);

/**
 * The clauses of the study-field filters over WORKLIST_FROM; `p` adds a parameter and returns its
 * placeholder (`?` or `$n`). A study without a result has none of the fields, so matches none.
 */
export function studyFieldClauses(filter: WorklistFilter, p: (value: string | number) => string): string[] {
  const clauses: string[] = [];
  if (filter.accession !== undefined) clauses.push(`l.accession_number = ${p(filter.accession)}`);
  if (filter.description !== undefined) clauses.push(`lower(l.study_description) LIKE ${p(`%${likeEscaped(filter.description.toLowerCase())}%`)} ESCAPE '!'`);
  if (filter.studyDateFrom !== undefined) clauses.push(`l.study_date >= ${p(filter.studyDateFrom)}`);
  if (filter.studyDateTo !== undefined) clauses.push(`l.study_date <= ${p(filter.studyDateTo)}`);
  if (filter.sex && filter.sex.length > 0) clauses.push(`l.patient_sex IN (${filter.sex.map((s) => p(s.toUpperCase())).join(', ')})`);
  if (filter.ageFrom !== undefined) clauses.push(`l.patient_age_days >= ${p(yearsToDays(filter.ageFrom))}`);
  // "At most 45" takes 45 years and 11 months too: below the 46th birthday.
  if (filter.ageTo !== undefined) clauses.push(`l.patient_age_days < ${p(yearsToDays(filter.ageTo + 1))}`);
  return clauses;
}

/** The ranking: priority (stat first; no current result last), the highest probability, waiting time (oldest first), then UID. */
const RANKING = [
  `CASE WHEN j.state = 'done' AND x.study_uid IS NULL AND l.priority_rank IS NOT NULL THEN l.priority_rank ELSE ${NO_PRIORITY_RANK} END`,
  `CASE WHEN j.state = 'done' AND x.study_uid IS NULL AND l.top_probability IS NOT NULL THEN l.top_probability ELSE 0 END DESC`,
  'j.enqueued_at',
];

const SORT_COLUMNS: Record<Exclude<WorklistSortKey, 'priority'>, string[]> = {
  received: ['j.enqueued_at'],
  studyDate: ['l.study_date', 'l.study_time'],
  accession: ['l.accession_number'],
  description: ['lower(l.study_description)'],
  modality: ['l.modality'],
  age: ['l.patient_age_days'],
};

/**
 * ORDER BY for a sort: the key's columns (entries without them last, in both directions and both
 * engines — SQLite puts NULL first, PostgreSQL last), then the ranking, then the UID.
 */
export function worklistOrder(sort: WorklistQuery['sort']): string {
  const by: string[] = [];
  if (sort && sort.key !== 'priority') {
    for (const column of SORT_COLUMNS[sort.key]) by.push(`(${column} IS NULL)`, `${column}${sort.descending ? ' DESC' : ''}`);
    by.push(...RANKING);
  } else if (sort?.descending) {
    // The ranking reversed: routine before stat, studies without a result still last.
    by.push(`CASE WHEN j.state = 'done' AND x.study_uid IS NULL AND l.priority_rank IS NOT NULL THEN 0 ELSE 1 END`, ...RANKING.map((c) => (c.endsWith(' DESC') ? c.slice(0, -5) : `${c} DESC`)));
  } else {
    by.push(...RANKING);
  }
  return `ORDER BY ${[...by, 'j.study_uid'].join(', ')}`;
}
