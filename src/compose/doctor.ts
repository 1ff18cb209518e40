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
import { loadManifest, type Manifest, type TextSection } from '../config/manifest.ts';
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
import { modelDirs } from './runtime.ts';

export type { Check, CheckStatus, DoctorReport } from './doctor/report.ts';

export interface DoctorOptions {
  /** The configuration file this run read (--config or PACS_TRIAGE_CONFIG), if any. */
  configFile?: string | undefined;
}

export async function doctor(config: Config, log: Logger, options: DoctorOptions = {}): Promise<DoctorReport> {
  const checks: Check[] = [];
  const mappingsDir = path.resolve(config.mappings.dir);
  // Every model the service would load (config `models`, else model.dir); named by folder when there are several.
  const dirs = modelDirs(config);
  const label = (name: string, dir: string): string => (dirs.length === 1 ? name : `${name} (${dir})`);

  const models: { dir: string; manifest: Manifest }[] = [];
  for (const dir of dirs) {
    const checked = await modelCheck(config, dir, label('model', dir), log);
    checks.push(checked.check);
    if (checked.manifest) models.push({ dir, manifest: checked.manifest });
  }
  const manifests = models.map((m) => m.manifest);

  let mappings: Mappings | undefined;
  checks.push(
    await attempt('mappings', async () => {
      mappings = loadMappings(config.mappings.dir, manifests.length > 0 ? [...new Set(manifests.flatMap((m) => m.findings.map((f) => f.code)))] : undefined);
      return ok('mappings', `valid, version ${mappings.version}`);
    }, () => `correct the files in ${mappingsDir} as listed`),
  );
  for (const { dir, manifest } of models) {
    if (mappings) checks.push(...modelMappingChecks(manifest, mappings, mappingsDir).map((c) => ({ ...c, name: label(c.name, dir) })));
  }

  // The text sections any model reads decide the FHIR searches; none known: all of them.
  const sections = manifests.length > 0 ? [...new Set(manifests.flatMap((m) => m.text?.sections.map((s) => s.kind) ?? []))] : undefined;
  checks.push(...(await upstreamChecks(config, sections, mappings)));
  return {
    ok: checks.every((c) => c.status !== 'fail'),
    paths: { config: options.configFile === undefined ? null : path.resolve(options.configFile), model: path.resolve(dirs[0] ?? config.model.dir), mappings: mappingsDir },
    checks,
  };
}

/** One model folder: the same check as `model check` (mappings apart: they are checked once, after), then a load on the configured providers. */
async function modelCheck(config: Config, dir: string, name: string, log: Logger): Promise<{ check: Check; manifest?: Manifest }> {
  let manifest: Manifest | undefined;
  const check = await attempt(name, async () => {
    const checked = await checkModel(dir, { executionProviders: config.model.executionProviders });
    if (!checked.ok) {
      manifest = checked.manifest;
      const problems = checked.problems.map((p) => `${p.where}: ${p.problem}`).join('; ');
      return fail(name, `${checked.problems.length} problem${checked.problems.length === 1 ? '' : 's'} in ${path.resolve(dir)}: ${problems}`, checked.problems.map((p) => p.fix).join('; '));
    }
    try {
      const model = await TriageModel.load({ ...config.model, dir }, log);
      manifest = model.manifest;
      await model.close();
      return ok(name, `${manifest.id}@${manifest.version} loaded on ${model.provider} (${manifest.findings.length} findings)`);
    } catch (err) {
      // The model cannot run here, but its manifest may still be read: the mapping checks need only that.
      manifest = await loadManifest(dir).then((m) => m.manifest).catch(() => undefined);
      throw err;
    }
  });
  return { check, ...(manifest ? { manifest } : {}) };
}

async function upstreamChecks(config: Config, sections: readonly TextSection['kind'][] | undefined, mappings: Mappings | undefined): Promise<Check[]> {
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
      checks.push(...(await fhirChecks(config, servers.fhir, sections, mappings)));
    }
    return checks;
  } finally {
    servers.close();
  }
}

async function fhirChecks(config: Config, fhir: FhirClient, sections: readonly TextSection['kind'][] | undefined, mappings: Mappings | undefined): Promise<Check[]> {
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
  return [server, ...capabilityChecks(cs, searchNeeds(mappings.fhir, sections), config.fhir?.writeOrderPriority ?? false)];
}
