import { z } from 'zod';
import { defineMachineType } from './type-manager';

/**
 * `rjr`: a peer whose jobs run in an existing IVIS job runner (the RJR); its
 * agent hands each run to `parameters.url` (`agent.executor.kind: rjr`).
 */
export const rjrType = defineMachineType({
  type: 'rjr',
  summary: "a peer whose jobs run in an existing IVIS job runner (parameters.url: the runner's HTTP API)",
  parameters: z.strictObject({
    url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }),
    adminHost: z.string().min(1).default('127.0.0.1'),
    adminPort: z.number().int().min(0).max(65535).default(9331),
  }),
  createRemoteMachine(machine) {
    const { url, adminHost, adminPort } = machine.parameters;
    return { executor: { kind: 'rjr', url }, admin: { host: adminHost, port: adminPort } };
  },
});
