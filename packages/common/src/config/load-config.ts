import fs from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { createConfigSchema, type RpsConfig, type SectionName } from './config.schema';

/** The env variables the loader reads; named once here so no other code spells them. */
export const CONFIG_ENV = {
  path: 'RPS_CONFIG',
  redisUrl: 'REDIS_URL',
  logLevel: 'LOG_LEVEL',
  managerToken: 'RPS_MANAGER_TOKEN',
} as const;

/** The default config file, relative to the working directory. */
export const DEFAULT_CONFIG_PATH = 'config/default.yaml';

/** One problem in a config file: where (dotted path) and what. */
export interface ConfigProblem {
  path: string;
  message: string;
}

/** Thrown by {@link loadConfig} with every problem found, not just the first. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    super(`invalid config ${file}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
    this.name = 'ConfigError';
  }

  /** One line per problem, as printed at start-up. */
  lines(): string[] {
    return this.problems.map((p) => `${this.file}: ${p.path}: ${p.message}`);
  }
}

/** Where to read from; defaults come from `process` only in main.ts callers. */
export interface LoadConfigOptions<K extends SectionName> {
  sections: readonly K[];
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}

const ALL_SECTIONS = ['redis', 'log', 'gateway', 'forwarder', 'agent', 'scheduler', 'watchdog', 'manager'];

function readYaml(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : String(err);
    throw new ConfigError(file, [{ path: '(file)', message: reason }]);
  }
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({ path: `(line ${e.linePos?.[0]?.line ?? '?'})`, message: e.message })),
    );
  }
  const value: unknown = doc.toJS();
  return value ?? {};
}

function issuePath(section: string, issue: z.core.$ZodIssue): string {
  return [section, ...issue.path.map(String)].join('.');
}

/**
 * Loads the one YAML config file (`RPS_CONFIG`, default `config/default.yaml`),
 * applies the `REDIS_URL`, `LOG_LEVEL` and `RPS_MANAGER_TOKEN` overrides, resolves relative paths
 * against the file's folder and validates `redis`, `log` and the requested
 * sections. Throws a {@link ConfigError} listing every problem.
 */
export function loadConfig<K extends SectionName>(options: LoadConfigOptions<K>): RpsConfig<K> {
  const file = path.resolve(options.cwd, options.env[CONFIG_ENV.path] || DEFAULT_CONFIG_PATH);
  const raw = readYaml(file);
  if (typeof raw !== 'object' || Array.isArray(raw) || raw === null) {
    throw new ConfigError(file, [{ path: '(root)', message: 'must be a mapping of sections' }]);
  }
  const doc = raw as Record<string, unknown>;
  const problems: ConfigProblem[] = Object.keys(doc)
    .filter((key) => !ALL_SECTIONS.includes(key))
    .map((key) => ({ path: key, message: `unknown section (known: ${ALL_SECTIONS.join(', ')})` }));

  const redisUrl = options.env[CONFIG_ENV.redisUrl];
  const logLevel = options.env[CONFIG_ENV.logLevel];
  const withEnv: Record<string, unknown> = {
    ...doc,
    redis: withOverride(doc.redis, 'url', redisUrl),
    log: withOverride(doc.log, 'level', logLevel),
    manager: withOverride(doc.manager, 'token', options.env[CONFIG_ENV.managerToken]),
  };

  const schema = createConfigSchema(path.dirname(file));
  const out: Record<string, unknown> = {};
  for (const section of ['redis', 'log', ...options.sections] as const) {
    const result = schema[section].safeParse(withEnv[section]);
    if (result.success) out[section] = deepFreeze(result.data);
    else problems.push(...result.error.issues.map((i) => ({ path: issuePath(section, i), message: i.message })));
  }
  if (problems.length > 0) throw new ConfigError(file, problems);
  return Object.freeze(out) as RpsConfig<K>;
}

/** Env overrides win over the file; a section that is not a mapping is left for the schema to report. */
function withOverride(section: unknown, key: string, value: string | undefined): unknown {
  if (!value) return section;
  if (section === undefined || section === null) return { [key]: value };
  if (typeof section !== 'object' || Array.isArray(section)) return section;
  return { ...section, [key]: value };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/**
 * The entry path every service's main.ts uses: loads the config, or prints one
 * line per problem to stderr and exits with code 2 (no stack trace).
 */
export function loadConfigOrExit<K extends SectionName>(
  sections: readonly K[],
  proc: Pick<NodeJS.Process, 'env' | 'cwd' | 'exit' | 'stderr'> = process,
): RpsConfig<K> {
  try {
    return loadConfig({ sections, env: proc.env, cwd: proc.cwd() });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    proc.stderr.write(err.lines().join('\n') + '\n');
    return proc.exit(2);
  }
}
