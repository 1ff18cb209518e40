/**
 * Reading docker/Dockerfile and docker/compose.yml the way Docker would, without a Docker engine:
 * the Dockerfile through dockerfile-ast (stages, JSON-form instructions, ENV), the compose file
 * through `yaml` (merge keys on) and compose's variable interpolation with an empty environment,
 * so every `${VAR:-default}` takes its default.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DockerfileParser, type Env, type Instruction } from 'dockerfile-ast';
import YAML from 'yaml';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const DOCKERFILE = 'docker/Dockerfile';
export const COMPOSE_FILE = 'docker/compose.yml';

// ---------------------------------------------------------------------------------- Dockerfile

export interface Stage {
  /** `AS name`, or the index when unnamed. */
  name: string;
  /** The FROM image, as written (variables unresolved). */
  from: string;
  instructions: Instruction[];
}

export function dockerfileText(file = DOCKERFILE): string {
  return readFileSync(ROOT + file, 'utf8');
}

/** The instructions grouped by stage, in file order (the last stage is what `docker build` tags). */
export function stages(text = dockerfileText()): Stage[] {
  const out: Stage[] = [];
  for (const instruction of DockerfileParser.parse(text).getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const args = instruction.getArguments().map((a) => a.getValue());
      const as = args.findIndex((a) => a.toUpperCase() === 'AS');
      out.push({ name: as >= 0 ? (args[as + 1] ?? String(out.length)) : String(out.length), from: args[0] ?? '', instructions: [] });
    } else {
      out.at(-1)?.instructions.push(instruction);
    }
  }
  return out;
}

export function stage(name: string, all = stages()): Stage {
  const found = all.find((s) => s.name === name);
  if (!found) throw new Error(`no stage "${name}" in ${DOCKERFILE}`);
  return found;
}

export function byKeyword(s: Stage, keyword: string): Instruction[] {
  return s.instructions.filter((i) => i.getKeyword() === keyword);
}

/** An exec-form (JSON array) instruction's words; throws on shell form. */
export function execForm(instruction: Instruction | undefined): string[] {
  if (!instruction) throw new Error('instruction missing');
  const text = instruction.getArgumentsContent() ?? '';
  const json = instruction.getKeyword() === 'HEALTHCHECK' ? text.replace(/^(--\S+\s+)*CMD\s+/, '') : text;
  const parsed: unknown = JSON.parse(json);
  if (!Array.isArray(parsed) || !parsed.every((w) => typeof w === 'string')) throw new Error(`${instruction.getKeyword()} is not an exec-form array: ${text}`);
  return parsed;
}

/** `ENV A=1 B=2` of a stage, as a map (later ones win). */
export function stageEnv(s: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const instruction of byKeyword(s, 'ENV')) {
    for (const property of (instruction as Env).getProperties()) env[property.getName()] = property.getUnescapedValue() ?? '';
  }
  return env;
}

/** The environment a container of the image gets for this VARIANT, from the stages it is built on. */
export function imageEnv(variant: 'cpu' | 'gpu', all = stages()): Record<string, string> {
  return { ...stageEnv(stage(`os-${variant}`, all)), ...stageEnv(stage('runtime', all)) };
}

/** `ARG NAME=default` before the first FROM. */
export function globalArgs(text = dockerfileText()): Record<string, string> {
  const out: Record<string, string> = {};
  for (const arg of DockerfileParser.parse(text).getInitialARGs()) {
    const property = arg.getProperty();
    if (property) out[property.getName()] = property.getValue() ?? '';
  }
  return out;
}

// ------------------------------------------------------------------------------------- compose

/**
 * Compose's interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?message}`, `${VAR?message}`. A required variable that is missing throws.
 */
export function interpolate(value: string, env: Record<string, string | undefined> = {}): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (whole, name?: string, colon?: string, op?: string, arg?: string, bare?: string) => {
    if (whole === '$$') return '$';
    if (bare !== undefined) return env[bare] ?? '';
    const v = env[name as string];
    const missing = colon ? v === undefined || v === '' : v === undefined;
    if (op === '-') return missing ? (arg ?? '') : (v as string);
    if (op === '?' && missing) throw new Error(`required variable ${name}: ${arg}`);
    return v ?? '';
  });
}

export type ComposeService = {
  image?: string;
  build?: { context?: string; dockerfile?: string; args?: Record<string, string> };
  environment?: Record<string, string | number | boolean | null> | string[];
  profiles?: string[];
  depends_on?: Record<string, unknown> | string[];
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  ports?: (string | number)[];
  entrypoint?: unknown;
  command?: unknown;
  healthcheck?: { test?: unknown };
  deploy?: { resources?: { reservations?: { devices?: { driver?: string; count?: number | string; capabilities?: string[] }[] } } };
  [key: string]: unknown;
};

export interface Compose {
  name?: string;
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

export function compose(file = COMPOSE_FILE): Compose {
  return YAML.parse(readFileSync(ROOT + file, 'utf8'), { merge: true }) as Compose;
}

/** A service's environment after interpolation, as strings (what the container sees). */
export function serviceEnv(service: ComposeService, hostEnv: Record<string, string | undefined> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  const entries: [string, unknown][] = Array.isArray(service.environment)
    ? service.environment.map((line) => {
        const eq = line.indexOf('=');
        return eq < 0 ? [line, hostEnv[line]] : [line.slice(0, eq), line.slice(eq + 1)];
      })
    : Object.entries(service.environment ?? {});
  for (const [key, value] of entries) {
    if (value === undefined || value === null) continue;
    out[key] = interpolate(String(value), hostEnv);
  }
  return out;
}

/** The services built from docker/Dockerfile, with the VARIANT each builds. */
export function triageServices(c = compose()): { name: string; service: ComposeService; variant: 'cpu' | 'gpu' }[] {
  return Object.entries(c.services)
    .filter(([, s]) => s.build?.dockerfile === DOCKERFILE)
    .map(([name, service]) => {
      const variant = service.build?.args?.['VARIANT'] ?? 'cpu';
      if (variant !== 'cpu' && variant !== 'gpu') throw new Error(`${name}: VARIANT ${variant}`);
      return { name, service, variant };
    });
}
