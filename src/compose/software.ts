import { readFileSync } from 'node:fs';

/** Our own name and version, for the SR's Software Versions and the FHIR Provenance. */
export const SOFTWARE = (() => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
  return { name: pkg.name, version: pkg.version };
})();
