/**
 * Orthanc configuration pacs-triage needs. Orthanc 1.10 has no labels, so the triage priority
 * and a pointer to our result are user metadata, which must be declared (indices 1024–65535).
 */
export const ORTHANC_USER_METADATA = {
  PacsTriagePriority: 4100,
  PacsTriageResult: 4101,
} as const;
