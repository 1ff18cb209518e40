import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { asTriageError } from '../domain/errors.ts';
import { connectServers, requirePacs } from './servers.ts';
import { TriageModel } from '../adapters/model/index.ts';
import { loadMappings } from '../config/mappings.ts';
import { describeTls } from '../adapters/http/tls.ts';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

async function check(name: string, run: () => Promise<string>): Promise<Check> {
  try {
    return { name, ok: true, detail: await run() };
  } catch (err) {
    const e = asTriageError(err, name);
    return { name, ok: false, detail: `${e.code}: ${e.message}` };
  }
}

/** Says what it finds: the model, the mappings, the PACS (REST + DICOMweb, with auth), the FHIR server. */
export async function doctor(config: Config, log: Logger): Promise<Check[]> {
  const checks: Check[] = [];
  let findings: string[] | undefined;
  checks.push(
    await check('model', async () => {
      const model = await TriageModel.load(config.model, log);
      findings = model.manifest.findings.map((f) => f.code);
      const detail = `${model.manifest.id}@${model.manifest.version} loaded on ${model.provider} (${findings.length} findings)`;
      await model.close();
      return detail;
    }),
  );
  checks.push(await check('mappings', async () => `valid, version ${loadMappings(config.mappings.dir, findings).version}`));
  if (!config.pacs) {
    checks.push({ name: 'pacs', ok: false, detail: 'not configured (pacs.baseUrl); only `analyze` can run' });
  } else {
    const servers = connectServers(config);
    try {
      if (servers.orthanc) {
        const orthanc = servers.orthanc;
        checks.push(await check('pacs (Orthanc REST)', async () => `Orthanc ${(await orthanc.system()).Version}, authenticated`));
      }
      checks.push(
        await check('pacs (DICOMweb QIDO-RS)', async () => {
          const dicomweb = requirePacs(servers);
          const res = await dicomweb.ping();
          return `answers ${res.status} at ${dicomweb.http.url('studies')}${transport(pacsAuthKind(config.pacs?.auth), config.pacs?.tls)}`;
        }),
      );
      const fhir = servers.fhir;
      if (fhir) {
        checks.push(
          await check('fhir', async () => {
            const cs = (await fhir.capabilities()) as { fhirVersion?: string; software?: { name?: string } };
            return `FHIR ${cs.fhirVersion ?? '?'}${cs.software?.name ? ` (${cs.software.name})` : ''}${transport(fhir.authKind, config.fhir?.tls)}`;
          }),
        );
      } else {
        checks.push({ name: 'fhir', ok: false, detail: 'not configured (fhir.baseUrl): the model will read no clinical text' });
      }
    } finally {
      servers.close();
    }
  }
  return checks;
}

/** How a server is reached, for the report: the kind of credentials (never the secret) and TLS files. */
function transport(auth: string, tls: Parameters<typeof describeTls>[0]): string {
  const t = describeTls(tls);
  return `; auth: ${auth}${t ? `; ${t}` : ''}`;
}

function pacsAuthKind(auth: NonNullable<Config['pacs']>['auth']): string {
  if (auth === undefined) return 'none';
  return 'token' in auth ? 'bearer token' : `basic (user ${auth.username})`;
}
