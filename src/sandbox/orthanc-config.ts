/**
 * Orthanc configuration pacs-triage needs. Orthanc 1.10 has no labels, so the triage priority
 * and a pointer to our result are user metadata, which must be declared (indices 1024–65535).
 * The declaration lives with the Orthanc adapter (which writes the names, and which `doctor`
 * quotes in its fix); the sandbox and the tests take it from there.
 */
import { USER_METADATA_DECLARATION } from '../adapters/orthanc/client.ts';

export const ORTHANC_USER_METADATA = USER_METADATA_DECLARATION;
