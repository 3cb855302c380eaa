import { z } from 'zod';
import { defineMachineType } from './type-manager';

const adminPort = z.number().int().min(0).max(65535).default(9331);

/**
 * `manual`: a peer set up by hand. Its agent runs jobs itself (the builtin
 * executor); the parameters are that executor's keys (docs/configuration.md,
 * `agent.executor`), passed on as they are and checked by the config schema
 * when the bundle is built.
 */
export const manualType = defineMachineType({
  type: 'manual',
  summary: 'a peer set up by hand; its agent runs jobs with the builtin executor',
  parameters: z
    .strictObject({
      workDir: z.string().min(1).default('/var/lib/rps-agent'),
      python: z.string().min(1).optional(),
      runAs: z.string().min(1).optional(),
      allowSameUser: z.boolean().optional(),
      subtypes: z.record(z.string(), z.strictObject({ libs: z.array(z.string()).default([]) })).optional(),
      pipArgs: z.array(z.string()).optional(),
      limits: z.record(z.string(), z.number().nullable()).optional(),
      adminHost: z.string().min(1).default('127.0.0.1'),
      adminPort,
    })
    .prefault({}),
  createRemoteMachine(machine) {
    const { adminHost, adminPort: port, ...executor } = machine.parameters;
    return { executor: { kind: 'builtin', ...executor }, admin: { host: adminHost, port } };
  },
});
