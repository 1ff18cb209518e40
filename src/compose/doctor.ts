/**
 * `doctor`: says, before the first study, what will break — the model, the mappings against the
 * model, the PACS (REST, DICOMweb, STOW, Orthanc's user metadata) and the FHIR server (its
 * CapabilityStatement against what the mappings will ask) — each with the fix. Nothing it does
 * stores or changes anything upstream: it runs against a site's live archive and EHR.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { asTriageError } from '../domain/errors.ts';
import { loadManifest, type Manifest } from '../config/manifest.ts';
import { loadMappings, type Mappings } from '../config/mappings.ts';
import { TriageModel } from '../adapters/model/index.ts';
import { describeTls } from '../adapters/http/tls.ts';
import type { FhirClient } from '../adapters/fhir/client.ts';
import { connectServers, requirePacs } from './servers.ts';
import { attempt, fail, ok, upstreamFix, warn, type Check, type DoctorReport } from './doctor/report.ts';
import { pacsChecks } from './doctor/pacs.ts';
import { capabilityChecks, searchNeeds, type CapabilityStatement } from './doctor/fhir.ts';
import { modelMappingChecks } from './doctor/model.ts';
import { checkModel } from './model-check.ts';

export type { Check, CheckStatus, DoctorReport } from './doctor/report.ts';

export interface DoctorOptions {
  /** The configuration file this run read (--config or PACS_TRIAGE_CONFIG), if any. */
  configFile?: string | undefined;
}

export async function doctor(config: Config, log: Logger, options: DoctorOptions = {}): Promise<DoctorReport> {
  const checks: Check[] = [];
  const modelDir = path.resolve(config.model.dir);
  const mappingsDir = path.resolve(config.mappings.dir);

  let manifest: Manifest | undefined;
  checks.push(
    await attempt('model', async () => {
      // The same check as `model check` (mappings apart: they are checked below, once).
      const checked = await checkModel(config.model.dir, { executionProviders: config.model.executionProviders });
      if (!checked.ok) {
        manifest = checked.manifest;
        const problems = checked.problems.map((p) => `${p.where}: ${p.problem}`).join('; ');
        return fail('model', `${checked.problems.length} problem${checked.problems.length === 1 ? '' : 's'} in ${modelDir}: ${problems}`, checked.problems.map((p) => p.fix).join('; '));
      }
      try {
        const model = await TriageModel.load(config.model, log);
        manifest = model.manifest;
        await model.close();
        return ok('model', `${manifest.id}@${manifest.version} loaded on ${model.provider} (${manifest.findings.length} findings)`);
      } catch (err) {
        // The model cannot run here, but its manifest may still be read: the mapping checks need only that.
        manifest = await loadManifest(config.model.dir).then((m) => m.manifest).catch(() => undefined);
        throw err;
      }
    }),
  );

  let mappings: Mappings | undefined;
  checks.push(
    await attempt('mappings', async () => {
      mappings = loadMappings(config.mappings.dir, manifest?.findings.map((f) => f.code));
      return ok('mappings', `valid, version ${mappings.version}`);
    }, () => `correct the files in ${mappingsDir} as listed`),
  );
  if (manifest && mappings) checks.push(...modelMappingChecks(manifest, mappings, mappingsDir));

  checks.push(...(await upstreamChecks(config, manifest, mappings)));
  return {
    ok: checks.every((c) => c.status !== 'fail'),
    paths: { config: options.configFile === undefined ? null : path.resolve(options.configFile), model: modelDir, mappings: mappingsDir },
    checks,
  };
}

async function upstreamChecks(config: Config, manifest: Manifest | undefined, mappings: Mappings | undefined): Promise<Check[]> {
  if (!config.pacs) return [fail('pacs', 'not configured: only `analyze` can run', 'set pacs.baseUrl (or PACS_TRIAGE_PACS__BASE_URL)')];
  let servers: ReturnType<typeof connectServers>;
  try {
    servers = connectServers(config);
  } catch (err) {
    const e = asTriageError(err, 'servers');
    return [fail('servers', `${e.code}: ${e.message}`)];
  }
  try {
    const checks = await pacsChecks(config.pacs, { dicomweb: requirePacs(servers), orthanc: servers.orthanc });
    if (!servers.fhir) {
      checks.push(fail('FHIR server', 'not configured: the model will read no clinical text, and no RiskAssessment is written', 'set fhir.baseUrl (or PACS_TRIAGE_FHIR__BASE_URL)'));
    } else {
      checks.push(...(await fhirChecks(config, servers.fhir, manifest, mappings)));
    }
    return checks;
  } finally {
    servers.close();
  }
}

async function fhirChecks(config: Config, fhir: FhirClient, manifest: Manifest | undefined, mappings: Mappings | undefined): Promise<Check[]> {
  let cs: CapabilityStatement | undefined;
  const server = await attempt(
    'FHIR server',
    async () => {
      cs = (await fhir.capabilities()) as CapabilityStatement;
      const tls = describeTls(config.fhir?.tls);
      const detail = `FHIR ${cs.fhirVersion ?? '?'}${cs.software?.name ? ` (${cs.software.name})` : ''} at ${config.fhir?.baseUrl ?? ''}; auth: ${fhir.authKind}${tls ? `; ${tls}` : ''}`;
      if (!cs.fhirVersion?.startsWith('4.0')) return warn('FHIR server', `${detail}: pacs-triage speaks FHIR R4 (4.0.x)`, 'point fhir.baseUrl at the server\'s R4 endpoint');
      return ok('FHIR server', detail);
    },
    (e) => (e.status === 404 ? `no FHIR server at ${config.fhir?.baseUrl ?? ''}/metadata: fhir.baseUrl must be the FHIR base (e.g. https://ehr/fhir/R4)` : upstreamFix(e, 'fhir')),
  );
  if (!cs) return [server];
  if (!mappings) return [server, warn('FHIR capabilities', 'not checked against the mappings: the mappings did not load (see above)')];
  // An image-only model reads no clinical text: only the patient look-up is needed then.
  const sections = manifest ? (manifest.text?.sections.map((s) => s.kind) ?? []) : undefined;
  return [server, ...capabilityChecks(cs, searchNeeds(mappings.fhir, sections), config.fhir?.writeOrderPriority ?? false)];
}
