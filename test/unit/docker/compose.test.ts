/**
 * docker/compose.yml, checked without a Docker engine: it validates against the compose
 * specification's JSON schema (the copy dclint ships, with ajv) and passes dclint's rules; every
 * PACS_TRIAGE_* variable it sets is a key of src/config/schema.ts; Orthanc and HAPI are configured
 * the way pacs-triage needs them.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DCLinter } from 'dclint';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { configFromEnv, ENV_PREFIX } from '../../../src/config/load.ts';
import { configSchema, type Config } from '../../../src/config/schema.ts';
import { formatZodIssues } from '../../../src/config/zod-issues.ts';
import { ORTHANC_USER_METADATA } from '../../../src/sandbox/orthanc-config.ts';
import { COMPOSE_FILE, ROOT, compose, imageEnv, interpolate, serviceEnv, triageServices, type ComposeService } from './docker-files.ts';

/** What docker/.env holds on a real install (compose.yml has no defaults for these). */
const SECRETS = {
  ORTHANC_ADMIN_PASSWORD: 'admin-password-from-env',
  ORTHANC_TRIAGE_PASSWORD: 'triage-password-from-env',
  TRIAGE_API_TOKEN: 'api-token-from-env-0123456789',
  POSTGRES_PASSWORD: 'pg-password-from-env',
};

/** Variables the service reads outside the config object (src/config/load.ts, src/observability/logging.ts). */
const NOT_CONFIG = new Set(['PACS_TRIAGE_LOG_LEVEL', 'PACS_TRIAGE_CONFIG']);

/**
 * dclint's rules at their defaults, less one: service-keys-order wants `<<` (the YAML merge key
 * that shares the service settings) sorted last as an unknown key; the file puts it first.
 */
const LINT_CONFIG = { rules: { 'service-keys-order': 0 as const }, quiet: false, debug: false, exclude: [] };

interface LintMessage {
  type: string;
  rule: string;
  line: number;
  message: string;
}

function lint(file: string): { errors: number; warnings: number; messages: string[] } {
  const [result] = new DCLinter(LINT_CONFIG).lintFiles([file], false) as { errorCount: number; warningCount: number; messages: LintMessage[] }[];
  if (!result) throw new Error(`dclint did not lint ${file}`);
  return { errors: result.errorCount, warnings: result.warningCount, messages: result.messages.map((m) => `${m.type} ${m.rule} (line ${m.line}): ${m.message}`) };
}

/** `PACS_TRIAGE_FHIR__BASE_URL` → ['fhir', 'baseUrl'] (src/config/load.ts's mapping). */
function configPath(name: string): string[] {
  return name
    .slice(ENV_PREFIX.length)
    .replace(/_FILE$/, '')
    .split('__')
    .map((s) => s.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()));
}

function at(object: unknown, keys: string[]): unknown {
  return keys.reduce<unknown>((node, key) => (node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined), object);
}

/** The config a container of this service starts with: image ENV, then the compose environment. */
function containerConfig(service: ComposeService, variant: 'cpu' | 'gpu'): { env: Record<string, string>; config: Config } {
  const env = { ...imageEnv(variant), ...serviceEnv(service, SECRETS) };
  const problems: string[] = [];
  const raw = configFromEnv(env, problems);
  expect(problems).toEqual([]);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`the configuration is invalid:\n${formatZodIssues(parsed.error.issues)}`);
  return { env, config: parsed.data };
}

const file = compose();
const triage = triageServices(file);

describe('docker/compose.yml', () => {
  it('validates against the compose specification and passes the compose linter', () => {
    const result = lint(ROOT + COMPOSE_FILE);
    expect(result.messages).toEqual([]);
    expect(result.errors).toBe(0);
  });

  it('the validator is live: it rejects what the specification does not allow', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pacs-triage-compose-'));
    const bad = path.join(dir, 'compose.yml');
    writeFileSync(bad, "name: bad\nservices:\n  a:\n    image: 'x:1'\n    restart: 'unless-stopped'\n    bogus_key: 1\n");
    const result = lint(bad);
    expect(result.errors).toBeGreaterThan(0);
    expect(result.messages.join('\n')).toMatch(/invalid-schema/);
  });

  it('refers only to services and volumes it declares, and pins every image', () => {
    const services = Object.keys(file.services);
    const volumes = Object.keys(file.volumes ?? {});
    for (const [name, service] of Object.entries(file.services)) {
      const deps = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
      for (const dep of deps) expect(services, `${name} depends on ${dep}`).toContain(dep);
      for (const volume of service.volumes ?? []) {
        const source = typeof volume === 'string' ? volume.split(':')[0] : volume.source;
        if (source && !source.startsWith('.') && !source.startsWith('/')) expect(volumes, `${name} mounts ${source}`).toContain(source);
      }
      expect(service.image, name).toMatch(/^[^:]+:[\w][\w.-]*$/);
      expect(service.image, name).not.toMatch(/:latest$/);
    }
  });

  it('builds pacs-triage from docker/Dockerfile: cpu by default, gpu in the gpu profile with a GPU reserved', () => {
    expect(triage.map((t) => [t.name, t.variant])).toEqual([
      ['pacs-triage', 'cpu'],
      ['pacs-triage-gpu', 'gpu'],
    ]);
    const [cpu, gpu] = triage.map((t) => t.service) as [ComposeService, ComposeService];
    expect(cpu.profiles).toBeUndefined();
    expect(gpu.profiles).toEqual(['gpu']);
    const devices = gpu.deploy?.resources?.reservations?.devices ?? [];
    expect(devices).toContainEqual(expect.objectContaining({ driver: 'nvidia', capabilities: expect.arrayContaining(['gpu']) }));
    for (const { name, service } of triage) {
      expect(service.build?.context, name).toBe('..');
      // The image's ENTRYPOINT + CMD run `serve` (test/unit/docker/dockerfile.test.ts); compose keeps them.
      expect(service.entrypoint, name).toBeUndefined();
      expect(service.command, name).toBeUndefined();
    }
  });

  it('sets only PACS_TRIAGE_* variables that are keys of the config schema, and a configuration that loads', () => {
    // The schema is strict: a key it does not know fails the parse (a misspelt variable is caught).
    expect(configSchema.safeParse(configFromEnv({ PACS_TRIAGE_API__HOTS: '0.0.0.0' }, [])).success).toBe(false);

    for (const { name, service, variant } of triage) {
      const { env, config } = containerConfig(service, variant);
      const names = Object.keys(serviceEnv(service, SECRETS)).filter((k) => k.startsWith(ENV_PREFIX));
      expect(names.length, name).toBeGreaterThan(5);
      for (const variable of names) {
        if (NOT_CONFIG.has(variable)) continue;
        const keys = configPath(variable);
        // The value the variable sets is in the loaded config, not dropped or defaulted away.
        const fromEnv = at(configFromEnv({ [variable]: env[variable] }, []), keys);
        expect(at(config, keys), `${name}: ${variable} → ${keys.join('.')}`).toEqual(fromEnv);
      }
      expect(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).toContain(env['PACS_TRIAGE_LOG_LEVEL'] ?? 'info');

      // Reached from outside the container, on the port compose publishes.
      expect(config.api.host, name).toBe('0.0.0.0');
      const published = (service.ports ?? []).map((p) => String(p).split(':').at(-1));
      expect(published, name).toContain(String(config.api.port));
      expect(config.api.token?.length ?? 0, name).toBeGreaterThanOrEqual(16);
      // The servers are the compose services, by name.
      expect(Object.keys(file.services)).toContain(new URL(config.pacs?.baseUrl ?? 'http://none').hostname);
      expect(Object.keys(file.services)).toContain(new URL(config.fhir?.baseUrl ?? 'http://none').hostname);
      // The state is in the compose file's PostgreSQL, as its user and database, with its password.
      expect(config.store.kind, name).toBe('postgres');
      const pg = new URL(config.store.url ?? 'postgres://none');
      expect(Object.keys(file.services)).toContain(pg.hostname);
      const pgEnv = serviceEnv(file.services[pg.hostname] as ComposeService, SECRETS);
      expect([decodeURIComponent(pg.username), decodeURIComponent(pg.password), pg.pathname.slice(1)]).toEqual([pgEnv['POSTGRES_USER'], pgEnv['POSTGRES_PASSWORD'], pgEnv['POSTGRES_DB']]);
      expect(service.depends_on, name).toMatchObject({ postgres: { condition: 'service_healthy' } });
      // Replicas (--scale) each get a host port from the published range, all on loopback.
      for (const p of service.ports ?? []) expect(String(p), name).toMatch(/^127\.0\.0\.1:\d+-\d+:8080$/);
      expect(config.api.allowedHosts, name).toEqual([]);
      expect(config.model.executionProviders, name).toEqual(variant === 'gpu' ? ['cuda', 'cpu'] : ['cpu']);
    }
  });

  it('configures Orthanc as pacs-triage needs it: DICOMweb, its user, the user metadata, StableAge', () => {
    const orthanc = file.services['orthanc'] as ComposeService;
    expect(orthanc.image).toMatch(/^orthancteam\/orthanc:/);
    const env = serviceEnv(orthanc, SECRETS);
    expect(env['DICOM_WEB_PLUGIN_ENABLED']).toBe('true');
    const json = JSON.parse(env['ORTHANC_JSON'] ?? '') as Record<string, unknown>;
    expect(json['UserMetadata']).toEqual(ORTHANC_USER_METADATA);
    expect(json['DicomWeb']).toEqual({ Enable: true, Root: '/dicom-web/' });
    expect(json['AuthenticationEnabled']).toBe(true);
    expect(json['StableAge']).toEqual(expect.any(Number));
    expect(json['StableAge'] as number).toBeGreaterThanOrEqual(5);
    expect(json['StableAge'] as number).toBeLessThanOrEqual(300);
    // No Lua webhook yet (ingest is the /changes poll).
    expect(json['LuaScripts']).toBeUndefined();
    expect(json['ExecuteLuaEnabled']).toBe(false);

    // The credentials pacs-triage uses are a registered user, with the same password source.
    const { config } = containerConfig(triage[0]?.service as ComposeService, 'cpu');
    const auth = config.pacs?.auth as { username: string; password: string };
    expect((json['RegisteredUsers'] as Record<string, string>)[auth.username]).toBe(auth.password);
    const secrets = { ...SECRETS, ORTHANC_TRIAGE_PASSWORD: 'from-docker-env-file' };
    expect(serviceEnv(triage[0]?.service as ComposeService, secrets)['PACS_TRIAGE_PACS__AUTH__PASSWORD']).toBe('from-docker-env-file');
    expect((JSON.parse(serviceEnv(orthanc, secrets)['ORTHANC_JSON'] ?? '') as { RegisteredUsers: Record<string, string> }).RegisteredUsers[auth.username]).toBe('from-docker-env-file');
    expect(config.pacs?.dicomWebPath).toBe('/dicom-web');
  });

  it("uses HAPI FHIR for R4 with client ids, and the demo Patients carry mappings/fhir.yaml's identifier system", () => {
    const hapi = file.services['hapi'] as ComposeService;
    expect(hapi.image).toMatch(/^hapiproject\/hapi:/);
    const env = serviceEnv(hapi);
    expect(env['hapi.fhir.fhir_version']).toBe('R4');
    expect(env['hapi.fhir.client_id_strategy']).toBe('ALPHANUMERIC');

    const mapping = YAML.parse(readFileSync(ROOT + 'mappings/fhir.yaml', 'utf8')) as { patient: { identifierSystem: string } };
    const bundle = JSON.parse(readFileSync(ROOT + 'test/fixtures/demo/fhir-bundle.json', 'utf8')) as {
      type: string;
      entry: { resource: { resourceType: string; id: string; identifier?: { system?: string }[] }; request: { method: string; url: string } }[];
    };
    expect(bundle.type).toBe('transaction');
    const patients = bundle.entry.filter((e) => e.resource.resourceType === 'Patient');
    expect(patients.length).toBeGreaterThan(0);
    for (const p of patients) expect(p.resource.identifier?.map((i) => i.system)).toContain(mapping.patient.identifierSystem);
    // PUT with client-chosen ids: ALPHANUMERIC accepts ids that are not all digits.
    for (const e of bundle.entry) {
      expect(e.request.method).toBe('PUT');
      expect(e.request.url).toBe(`${e.resource.resourceType}/${e.resource.id}`);
      expect(e.resource.id).toMatch(/\D/);
    }
  });

  it('has no default secrets: compose refuses to start without each one, and says which to set', () => {
    const everything = Object.values(file.services).map((s) => JSON.stringify(s.environment ?? {}));
    for (const name of Object.keys(SECRETS)) {
      const without: Record<string, string> = { ...SECRETS };
      delete without[name];
      const refusals = Object.values(file.services).flatMap((s) => {
        try {
          serviceEnv(s, without);
          return [];
        } catch (err) {
          return [(err as Error).message];
        }
      });
      expect(refusals.length, name).toBeGreaterThan(0);
      for (const r of refusals) expect(r, name).toMatch(new RegExp(`${name}.*set ${name}`));
    }
    expect(everything.join('\n')).not.toMatch(/change-me/);
    // Postgres is reached by pacs-triage only: no published port.
    expect((file.services['postgres'] as ComposeService).ports).toBeUndefined();
  });

  it('interpolates like compose', () => {
    expect(interpolate('a ${X:-d} ${Y-e} $$ ${Z}', { Y: '' })).toBe('a d  $ ');
    expect(interpolate('${X:-d}', { X: 'v' })).toBe('v');
    expect(() => interpolate('${X:?set X}')).toThrow(/set X/);
  });
});
