/**
 * `doctor`'s PACS checks: the REST and DICOMweb roots with the configured auth, whether this user
 * may store (STOW-RS) and, on Orthanc, write our user metadata — each asked without storing or
 * changing anything, since doctor runs against the site's live archive.
 */
import type { Config } from '../../config/schema.ts';
import type { DicomWebClient } from '../../adapters/dicomweb/client.ts';
import { USER_METADATA_DECLARATION, type OrthancClient, type OrthancSystem } from '../../adapters/orthanc/client.ts';
import { describeTls } from '../../adapters/http/tls.ts';
import { attempt, fail, ok, upstreamFix, warn, type Check } from './report.ts';

type Pacs = NonNullable<Config['pacs']>;

/** The declaration to paste into orthanc.json, exactly. */
export const USER_METADATA_FIX = `"UserMetadata": { ${Object.entries(USER_METADATA_DECLARATION)
  .map(([name, index]) => `"${name}": ${index}`)
  .join(', ')} }`;

export interface PacsClients {
  dicomweb: DicomWebClient;
  orthanc: OrthancClient | undefined;
}

export async function pacsChecks(pacs: Pacs, clients: PacsClients): Promise<Check[]> {
  const { dicomweb, orthanc } = clients;
  const checks: Check[] = [];
  let system: OrthancSystem | undefined;
  let plugins: string[] | undefined;
  if (orthanc) {
    const rest = await attempt(
      'pacs REST API (Orthanc)',
      async () => {
        system = await orthanc.system();
        plugins = await orthanc.plugins().catch(() => undefined);
        return ok('pacs REST API (Orthanc)', `Orthanc ${system.Version} at ${orthanc.http.url('system')}${transport(pacs)}`);
      },
      (e) =>
        e.status === 404
          ? `pacs.baseUrl must be Orthanc's REST root (e.g. http://orthanc:8042), not its DICOMweb root; tried ${pacs.baseUrl}`
          : upstreamFix(e, 'pacs'),
    );
    checks.push(rest);
  }
  const qido = await attempt(
    'pacs DICOMweb QIDO-RS',
    async () => {
      const res = await dicomweb.ping();
      return ok('pacs DICOMweb QIDO-RS', `answers ${res.status} at ${dicomweb.http.url('studies')}${transport(pacs)}`);
    },
    (e) => (e.status === 404 || e.status === 405 ? noDicomWebFix(pacs, plugins) : upstreamFix(e, 'pacs')),
  );
  checks.push(qido);
  if (qido.status === 'ok') checks.push(await stowCheck(dicomweb));
  if (orthanc && system) {
    checks.push(await metadataCheck(orthanc), revisionsCheck(system));
  }
  return checks;
}

function noDicomWebFix(pacs: Pacs, plugins: string[] | undefined): string {
  if (plugins && !plugins.includes('dicom-web')) {
    return 'Orthanc has no DICOMweb plugin loaded: install it (Debian: orthanc-dicomweb) and list it under "Plugins" in orthanc.json';
  }
  return `set pacs.dicomWebPath to the PACS's DICOMweb root: "${pacs.dicomWebPath}" was tried (Orthanc's is its DicomWeb.Root setting, "/dicom-web/" by default)`;
}

/**
 * An empty STOW-RS (a multipart with no part): the credentials and the route are checked, and
 * nothing is stored (Orthanc 1.10, measured: 200 with empty sequences; 401 without credentials).
 * Left open: a PACS that refuses a real instance for its content (a SOP class, a size limit).
 */
async function stowCheck(dicomweb: DicomWebClient): Promise<Check> {
  const name = 'pacs may store (STOW-RS)';
  const where = dicomweb.http.url('studies');
  return attempt(
    name,
    async () => {
      const res = await dicomweb.stowProbe();
      const s = res.status;
      if (s >= 200 && s < 300) return ok(name, `an empty STOW-RS (no instance, nothing stored) was accepted at ${where} (${s})`);
      if (s === 401) return fail(name, `POST ${where} answered 401: the results (DICOM SR) cannot be stored`, 'the PACS refused the credentials for STOW-RS: check pacs.auth');
      if (s === 403) return fail(name, `POST ${where} answered 403: this user may read but not store, so the results (DICOM SR) cannot be stored`, 'grant the user in pacs.auth the right to store (STOW-RS) on the PACS');
      if (s === 404 || s === 405) return fail(name, `POST ${where} answered ${s}: no STOW-RS there`, 'enable STOW-RS on the PACS (Orthanc: the DICOMweb plugin with "DicomWeb": { "Enable": true })');
      return warn(name, `POST ${where} answered ${s} to an empty STOW-RS: the credentials were not refused, but whether this user may store could not be told without storing`);
    },
    (e) => upstreamFix(e, 'pacs'),
  );
}

/**
 * Orthanc 1.10 lists no declared metadata: each name is probed with a write to a study that
 * cannot exist (OrthancClient.probeMetadataName says what that does and does not prove).
 */
async function metadataCheck(orthanc: OrthancClient): Promise<Check> {
  const name = 'Orthanc user metadata';
  const names = Object.keys(USER_METADATA_DECLARATION);
  const method = 'asked by a PUT on a study id Orthanc cannot have, so no study was touched; a write refused per study (an authorization plugin) would still show only on a real study';
  return attempt(
    name,
    async () => {
      const probes = await Promise.all(names.map((n) => orthanc.probeMetadataName(n)));
      const refused = probes.find((p) => p.status === 401 || p.status === 403);
      if (refused) {
        return fail(
          name,
          `PUT studies/…/metadata/${refused.name} answered ${refused.status}: the triage priority cannot be written to Orthanc`,
          refused.status === 401 ? 'Orthanc refused the credentials: check pacs.auth' : 'grant the user in pacs.auth PUT on /studies/{id}/metadata/{name} (an authorization plugin or a proxy refused it)',
        );
      }
      const undeclared = probes.filter((p) => p.verdict === 'undeclared').map((p) => p.name);
      if (undeclared.length > 0) {
        return fail(
          name,
          `Orthanc does not declare ${undeclared.join(', ')} ("Inexistent item"): writing the triage priority would fail with 404 for every study`,
          `add ${USER_METADATA_FIX} to orthanc.json (merged into any "UserMetadata" already there; other free indices 1024–65535 do too), then restart Orthanc`,
        );
      }
      const unknown = probes.filter((p) => p.verdict === 'unknown');
      if (unknown.length > 0) {
        return warn(
          name,
          `cannot tell whether ${unknown.map((p) => p.name).join(', ')} are declared: Orthanc answered ${unknown.map((p) => p.status).join('/')} without its error description (HttpDescribeErrors off?); ${method}`,
          `make sure orthanc.json has ${USER_METADATA_FIX}; set "HttpDescribeErrors": true (Orthanc's default) to let doctor check`,
        );
      }
      return ok(name, `${names.join(' and ')} are declared and this user may write them (${method})`);
    },
    (e) => upstreamFix(e, 'pacs'),
  );
}

/**
 * Orthanc 1.9.2+ with CheckRevisions refuses (409, measured on 1.10) a write of metadata that
 * exists unless it carries If-Match: the second result of a study and a retraction rewrite ours.
 */
function revisionsCheck(system: OrthancSystem): Check {
  const name = 'Orthanc metadata revisions';
  if (system.CheckRevisions === true) {
    return fail(
      name,
      'Orthanc checks revisions (CheckRevisions true): a second write of PacsTriagePriority on a study (a study processed again, a retraction) is refused with 409 Conflict',
      'set "CheckRevisions": false in orthanc.json (pacs-triage writes its metadata without If-Match)',
    );
  }
  return ok(name, system.CheckRevisions === false ? 'CheckRevisions off: our metadata can be rewritten' : 'no revision checks in this Orthanc version');
}

function transport(pacs: Pacs): string {
  const auth = pacs.auth === undefined ? 'none' : 'token' in pacs.auth ? 'bearer token' : `basic (user ${pacs.auth.username})`;
  const tls = describeTls(pacs.tls);
  return `; auth: ${auth}${tls ? `; ${tls}` : ''}`;
}
