import { RUN_STATES } from '@rps/common';
import { z } from 'zod';
import { issueRequestSchema as caIssueRequestSchema } from '../ca/issue-request.schema';
import { certificateInfoSchema as caCertificateInfoSchema } from '../ca/ca-index';

// The API's shapes, once: routes validate with them and /openapi.json is generated from them.

/** A machine id: the agent's `agent.id` (the peer id), so the same pattern. */
export const machineIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ -');

export const MACHINE_STATES = [
  'provisioned',
  'active',
  'draining',
  'stopped',
  'lost',
  'removing',
  'removed',
] as const;

export const peerSummarySchema = z
  .object({
    id: z.string(),
    state: z.string().meta({ description: 'active, draining, stopped, lost or removed' }),
    address: z.string().nullable(),
    capacity: z.number().int().nullable(),
    running: z.number().int().meta({ description: 'runs the peer holds (dispatched or running)' }),
    lastHeartbeat: z.string().nullable(),
    drained: z.boolean(),
    executor: z.string().nullable(),
    version: z.string().nullable(),
  })
  .meta({ id: 'PeerSummary' });

export const machineSchema = z
  .object({
    id: machineIdSchema,
    name: z.string(),
    description: z.string(),
    address: z.string(),
    dnsname: z.string().nullable(),
    type: z.string(),
    parameters: z.record(z.string(), z.unknown()),
    state: z.enum(MACHINE_STATES),
    capacity: z.number().int().nullable(),
    lastHeartbeat: z.string().nullable(),
    peer: peerSummarySchema.nullable(),
    certificateSerial: z.string().nullable(),
    createdAt: z.string(),
    removedAt: z.string().nullable(),
  })
  .meta({ id: 'Machine' });

export const bundleFileSchema = z.object({
  name: z.string(),
  mode: z.string().meta({ description: 'octal file mode, e.g. "0600"' }),
  content: z.string(),
});
export const bundleSchema = z.object({ files: z.array(bundleFileSchema) }).meta({ id: 'SetupBundle' });

export const createMachineSchema = z
  .strictObject({
    id: machineIdSchema.optional().meta({ description: 'default: derived from the name' }),
    name: z.string().trim().min(1).max(128),
    description: z.string().max(1000).default(''),
    address: z
      .ipv4()
      .or(z.ipv6())
      .meta({ description: 'the address the RPS sees the peer at (IP SAN of its certificate)' }),
    dnsname: z
      .string()
      .regex(
        /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/,
        'must be a DNS name',
      )
      .nullable()
      .optional(),
    type: z.string().min(1),
    parameters: z.record(z.string(), z.unknown()).default({}),
    capacity: z.number().int().min(1).max(1024).nullable().optional(),
  })
  .meta({ id: 'CreateMachine' });
export type CreateMachineInput = z.output<typeof createMachineSchema>;

export const runSummarySchema = z
  .object({
    runId: z.number().int(),
    state: z.enum(RUN_STATES),
    peerId: z.string().nullable(),
    taskId: z.number().int().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'RunSummary' });

export const runDetailSchema = runSummarySchema
  .extend({
    execution: z.number().int(),
    jobId: z.number().int(),
    startedAt: z.string(),
    finishedAt: z.string(),
    error: z.string(),
    reason: z.string(),
    phase: z.string(),
  })
  .meta({ id: 'RunDetail' });

export const runsQuerySchema = z.strictObject({
  state: z.enum(RUN_STATES).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const runIdParamSchema = z.strictObject({
  id: z
    .string()
    .regex(/^\d{1,15}$/, 'must be a run id (decimal)')
    .transform(Number),
});
export const idParamSchema = z.strictObject({ id: machineIdSchema });

export const queueStatsSchema = z
  .object({
    name: z.string(),
    waiting: z.number().int(),
    active: z.number().int(),
    delayed: z.number().int(),
    completed: z.number().int(),
    failed: z.number().int(),
    prioritized: z.number().int(),
    paused: z.boolean(),
  })
  .meta({ id: 'QueueStats' });

export const certificateInfoSchema = caCertificateInfoSchema.meta({ id: 'CertificateInfo' });

/** POST /api/certificates: helper B's schema, the one LocalCa.issue checks with. */
export const issueRequestSchema = caIssueRequestSchema.meta({ id: 'IssueRequest' });

export const issuedCertificateSchema = z
  .object({ info: certificateInfoSchema, certPem: z.string(), keyPem: z.string(), caPem: z.string() })
  .meta({ id: 'IssuedCertificate' });

export const serialParamSchema = z.strictObject({
  serial: z.string().regex(/^(0x)?[0-9a-fA-F:]{1,128}$/, 'must be a hex serial'),
});

export const caInitSchema = z
  .strictObject({
    commonName: z.string().trim().min(1).max(64).optional(),
    validityDays: z.number().int().min(1).max(36500).optional(),
  })
  .meta({ id: 'CaInit' });
export const caImportSchema = z
  .strictObject({ caCertPem: z.string().min(1), caKeyPem: z.string().min(1) })
  .meta({ id: 'CaImport' });
export const caInfoSchema = z
  .object({ caPem: z.string(), certificate: certificateInfoSchema.nullable() })
  .meta({ id: 'CaInfo' });

export const clientNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9._@-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ @ -');
export const allowedClientSchema = z
  .object({
    name: z.string(),
    fingerprint256: z.string().optional(),
    serial: z.string().optional(),
    issuer: z.string().optional(),
  })
  .meta({ id: 'AllowedClient' });
/** The body of POST /api/clients; the match part is validated by common's clientMatchSchema. */
export const addClientSchema = z
  .strictObject({
    name: clientNameSchema,
    fingerprint256: z.string().optional(),
    serial: z.union([z.string(), z.number()]).optional(),
    issuer: z.string().optional(),
  })
  .meta({ id: 'AddClient' });
export const clientNameParamSchema = z.strictObject({ name: clientNameSchema });

export const errorSchema = z
  .object({
    error: z.string(),
    code: z.string().meta({ description: 'a code of docs/errors.md' }),
    details: z.array(z.object({ path: z.string(), message: z.string() })),
  })
  .meta({ id: 'Error' });
