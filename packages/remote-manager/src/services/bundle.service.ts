import { createConfigSchema } from '@rps/common';
import { stringify } from 'yaml';
import type { AgentPart } from './type-managers/type-manager';

/** One file of a setup bundle. */
export interface BundleFile {
  name: string;
  /** Octal, as `chmod` takes it. */
  mode: string;
  content: string;
}

export interface SetupBundle {
  files: BundleFile[];
}

/** What goes into a machine's agent config besides its type's part. */
export interface BundleInput {
  machineId: string;
  address: string;
  capacity: number | null;
  agent: AgentPart;
  /** The Redis URL the agent uses, credentials included. */
  redisUrl: string;
  prefix: string;
  ivis: { trustedUrlBase: string; sandboxUrlBase: string; es: { host: string; port: number } };
  certPem: string;
  keyPem: string;
  caPem: string;
}

/** File names in the bundle (IVIS's names for an RPS host: svr.pem is the certificate, svr.key its key). */
export const BUNDLE_FILES = {
  config: 'agent.yaml',
  cert: 'svr.pem',
  key: 'svr.key',
  ca: 'ca.cert',
} as const;

/**
 * The agent config of a machine: a complete file `RPS_CONFIG` can point at.
 * Checked against the config schema here, so a bundle that would not start
 * its agent is never handed out.
 */
export function agentConfig(input: BundleInput): Record<string, unknown> {
  const agent: Record<string, unknown> = {
    id: input.machineId,
    address: input.address,
    ...(input.capacity !== null ? { capacity: input.capacity } : {}),
    admin: input.agent.admin ?? { host: '127.0.0.1', port: 9331 },
    ...input.agent.extra,
    executor: input.agent.executor,
    ivis: input.ivis,
  };
  const parsed = createConfigSchema('/').agent.safeParse(agent);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `agent.${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`the machine's agent config would not load: ${problems}`);
  }
  return { redis: { url: input.redisUrl, prefix: input.prefix }, log: { level: 'info' }, agent };
}

/** The setup bundle: agent config (0600: it holds the Redis password), certificate, key (0600), CA. */
export function buildBundle(input: BundleInput): SetupBundle {
  const header =
    `# Setup bundle of machine ${input.machineId}, written by remote-manager.\n` +
    `# Start its agent with: RPS_CONFIG=${BUNDLE_FILES.config} node packages/peer-agent/dist/main.js\n`;
  return {
    files: [
      { name: BUNDLE_FILES.config, mode: '0600', content: header + stringify(agentConfig(input)) },
      { name: BUNDLE_FILES.cert, mode: '0644', content: input.certPem },
      { name: BUNDLE_FILES.key, mode: '0600', content: input.keyPem },
      { name: BUNDLE_FILES.ca, mode: '0644', content: input.caPem },
    ],
  };
}

/** `url` with the user part replaced by a machine's own Redis user. */
export function withRedisUser(
  url: string,
  credentials: { username: string; password: string } | null,
): string {
  if (!credentials) return url;
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(credentials.username);
  parsed.password = encodeURIComponent(credentials.password);
  return parsed.toString();
}
