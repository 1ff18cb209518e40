/**
 * The OpenAPI 3.1 document, generated from the route table (routes.ts) and the zod schemas that
 * also validate the requests: what is documented is what is served and checked.
 */
import { z } from 'zod';
import { ROUTES, type Answer } from './routes.ts';
import { uidParamSchema } from './schemas.ts';

type Json = Record<string, unknown>;

/** Every schema with a component name (`meta.id`), reachable from the routes, as `#/components/schemas/<id>`. */
function components(): { refs: Map<z.ZodType, string>; schemas: Record<string, Json> } {
  const registry = z.registry<{ id: string }>();
  const seen = new Set<z.ZodType>();
  const visit = (schema: z.ZodType | undefined): void => {
    if (!schema || seen.has(schema)) return;
    seen.add(schema);
    const id = (schema.meta() as { id?: string } | undefined)?.id;
    if (id) registry.add(schema, { id });
  };
  for (const r of ROUTES) {
    visit(r.body);
    for (const a of Object.values(r.responses)) visit(a.schema);
  }
  const out = z.toJSONSchema(registry, { uri: (id) => `#/components/schemas/${id}`, io: 'input', unrepresentable: 'any' }) as { schemas: Record<string, Json> };
  const refs = new Map<z.ZodType, string>();
  for (const schema of seen) {
    const id = (schema.meta() as { id?: string } | undefined)?.id;
    if (id) refs.set(schema, id);
  }
  const schemas: Record<string, Json> = {};
  for (const [id, s] of Object.entries(out.schemas)) {
    const { $schema: _s, $id: _i, ...rest } = s;
    schemas[id] = rest;
  }
  return { refs, schemas };
}

function schemaOf(schema: z.ZodType, refs: Map<z.ZodType, string>): Json {
  const id = refs.get(schema);
  if (id) return { $ref: `#/components/schemas/${id}` };
  const { $schema: _s, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json;
  return rest;
}

function answer(a: Answer, refs: Map<z.ZodType, string>): Json {
  if (a.contentType) return { description: a.description, content: { [a.contentType]: { schema: { type: 'string', ...(a.contentType === 'image/png' ? { format: 'binary' } : {}) } } } };
  return { description: a.description, ...(a.schema ? { content: { 'application/json': { schema: schemaOf(a.schema, refs) } } } : {}) };
}

function build(): Json {
  const { refs, schemas } = components();
  const paths: Record<string, Record<string, Json>> = {};
  for (const r of ROUTES) {
    const parameters: Json[] = [];
    if (r.path.includes('{uid}')) parameters.push({ name: 'uid', in: 'path', required: true, description: 'Study Instance UID', schema: schemaOf(uidParamSchema, refs) });
    for (const [name, field] of Object.entries(r.query?.shape ?? {})) {
      const schema = schemaOf(field as z.ZodType, refs);
      const { description, ...rest } = schema as { description?: string };
      parameters.push({ name, in: 'query', required: false, ...(description ? { description } : {}), schema: rest });
    }
    const security = r.access === 'public' ? [] : r.access === 'webhook' ? [{ webhookSecret: [] }] : r.access === 'metrics' ? [{ bearer: [] }, { metricsBearer: [] }] : [{ bearer: [] }];
    (paths[r.path] ??= {})[r.method] = {
      operationId: r.id,
      summary: r.summary,
      security,
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: schemaOf(r.body, refs) } } } } : {}),
      responses: Object.fromEntries(Object.entries(r.responses).map(([status, a]) => [status, answer(a, refs)])),
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'pacs-triage API',
      version: '1',
      description:
        'Triage worklist, study results, rendered images, reprocessing and radiologist feedback. Every /api route needs `Authorization: Bearer <api.token>`; ' +
        'the public routes are /healthz, /readyz (status only), /openapi.json and the worklist page. A request whose Host is not one of api.allowedHosts gets 421. ' +
        'Responses carry no patient names or identifiers other than the Study Instance UID. The reference model is not for clinical use.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'api.token' },
        metricsBearer: { type: 'http', scheme: 'bearer', description: 'api.metricsToken: /metrics and /readyz details only' },
        webhookSecret: { type: 'apiKey', in: 'header', name: 'X-Pacs-Triage-Secret', description: 'ingest.webhook.secret (at least 16 characters)' },
      },
      schemas,
    },
  };
}

export const openApiDocument = build() as { openapi: string; paths: Record<string, Record<string, Json>>; components: Json };
