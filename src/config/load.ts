import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import type { z } from 'zod';
import { TriageError } from '../domain/errors.ts';
import { configSchema, type Config } from './schema.ts';
import { formatZodIssues } from './zod-issues.ts';

export const ENV_PREFIX = 'PACS_TRIAGE_';
/** Variables that configure logging or tools, not the config object. */
const NOT_CONFIG = new Set(['PACS_TRIAGE_LOG_LEVEL', 'PACS_TRIAGE_CONFIG', 'PACS_TRIAGE_DEBUG', 'PACS_TRIAGE_SCREENSHOT']);

/** `BASE_URL` → `baseUrl`. */
function camel(segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

type Kind = 'string' | 'number' | 'boolean' | 'array' | 'object' | 'other';

/** What the schema expects at a path (several kinds where a union allows them). */
export function kindsAt(schema: z.ZodType, keys: readonly string[]): Set<Kind> {
  const def = (schema as unknown as { def: { type: string; innerType?: z.ZodType; options?: z.ZodType[]; shape?: Record<string, z.ZodType> } }).def;
  switch (def.type) {
    case 'default':
    case 'prefault':
    case 'optional':
    case 'nullable':
      return kindsAt(def.innerType as z.ZodType, keys);
    case 'union':
      return new Set((def.options ?? []).flatMap((o) => [...kindsAt(o, keys)]));
    case 'object': {
      if (keys.length === 0) return new Set(['object']);
      const child = (schema as unknown as z.ZodObject).shape[keys[0] as string] as z.ZodType | undefined;
      return child ? kindsAt(child, keys.slice(1)) : new Set(); // not a key here (another union option may have it)
    }
    default:
      if (keys.length > 0) return new Set();
      if (def.type === 'string' || def.type === 'enum') return new Set(['string']);
      if (def.type === 'number') return new Set(['number']);
      if (def.type === 'boolean') return new Set(['boolean']);
      if (def.type === 'array') return new Set(['array']);
      return new Set(['other']);
  }
}

/**
 * An environment value typed by what the schema expects there: a password of digits stays a
 * string, a port becomes a number. Where the schema does not know the key, it is guessed, so the
 * schema can still name it as unknown.
 */
function typedEnvValue(raw: string, keys: readonly string[]): unknown {
  const kinds = kindsAt(configSchema, keys);
  if (kinds.size === 1 && kinds.has('string')) return raw;
  if (kinds.has('array') && !raw.trim().startsWith('[')) return raw.split(',').map((s) => s.trim());
  return parseEnvValue(raw);
}

/** JSON-ish scalars from the environment: numbers, booleans and JSON arrays/objects; else the string. */
function parseEnvValue(raw: string): unknown {
  const t = raw.trim();
  if (t === 'true') return true;
  if (t === 'false') return false;
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  if ((t.startsWith('[') && t.endsWith(']')) || (t.startsWith('{') && t.endsWith('}'))) {
    try {
      return JSON.parse(t);
    } catch {
      return raw;
    }
  }
  return raw;
}

function setPath(target: Record<string, unknown>, keys: string[], value: unknown): void {
  let node = target;
  keys.slice(0, -1).forEach((key) => {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  });
  node[keys[keys.length - 1] as string] = value;
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    out[key] =
      typeof value === 'object' && value !== null && !Array.isArray(value) && typeof prev === 'object' && prev !== null && !Array.isArray(prev)
        ? deepMerge(prev as Record<string, unknown>, value as Record<string, unknown>)
        : value;
  }
  return out;
}

/**
 * `PACS_TRIAGE_FHIR__BASE_URL=…` → `{ fhir: { baseUrl: … } }`; a `_FILE` suffix reads the value
 * from that file (secrets mounted by Docker or Kubernetes), trailing newline removed, unless the
 * schema has a key of that very name (`…__CA_FILE` → `caFile`, a path).
 */
export function configFromEnv(env: NodeJS.ProcessEnv, problems: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || raw === undefined || NOT_CONFIG.has(name)) continue;
    let rest = name.slice(ENV_PREFIX.length);
    let text = raw;
    // A key that itself ends in "File" (fhir.auth.smart.privateKeyFile, pacs.tls.caFile) takes
    // a path as its value; only other `_FILE` names point at a file holding the value.
    const ownKey = rest.split('__').filter((k) => k !== '').map(camel);
    if (rest.endsWith('_FILE') && kindsAt(configSchema, ownKey).size === 0) {
      rest = rest.slice(0, -'_FILE'.length);
      try {
        text = readFileSync(raw, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        problems.push(`  - ${name}: cannot read ${raw}: ${(err as Error).message}`);
        continue;
      }
    }
    const keys = rest.split('__').filter((k) => k !== '').map(camel);
    if (keys.length === 0) continue;
    setPath(out, keys, typedEnvValue(text, keys));
  }
  return out;
}

export interface LoadConfigOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Values the command line sets (highest precedence). */
  overrides?: Record<string, unknown>;
}

/** Precedence: command line > environment > file > defaults. Every problem is reported at once. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const problems: string[] = [];
  let fromFile: Record<string, unknown> = {};
  const file = options.file ?? env['PACS_TRIAGE_CONFIG'];
  if (file !== undefined) {
    try {
      const text = readFileSync(file, 'utf8');
      const parsed: unknown = path.extname(file) === '.json' ? JSON.parse(text) : YAML.parse(text);
      if (parsed !== null && parsed !== undefined) {
        if (typeof parsed !== 'object' || Array.isArray(parsed)) problems.push(`  - ${file}: must hold an object`);
        else fromFile = parsed as Record<string, unknown>;
      }
    } catch (err) {
      problems.push(`  - ${file}: ${(err as Error).message}`);
    }
  }
  const merged = deepMerge(deepMerge(fromFile, configFromEnv(env, problems)), options.overrides ?? {});
  const result = configSchema.safeParse(merged);
  if (!result.success) problems.push(formatZodIssues(result.error.issues));
  if (problems.length > 0 || !result.success) {
    throw new TriageError('CONFIG_INVALID', `configuration is invalid:\n${problems.join('\n')}`);
  }
  return withPackagePaths(result.data);
}

/** The folder that holds package.json, models/ and mappings/. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Relative model and mappings folders are looked up from the working directory first, then in
 * the installed package, so `npx pacs-triage` works from any folder with the shipped defaults.
 */
function withPackagePaths(config: Config): Config {
  const resolve = (p: string): string => (path.isAbsolute(p) || existsSync(p) ? p : path.join(PACKAGE_ROOT, p));
  return { ...config, model: { ...config.model, dir: resolve(config.model.dir) }, mappings: { dir: resolve(config.mappings.dir) } };
}
