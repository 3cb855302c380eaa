import { z } from 'zod';
import type { ApiRouter } from '../http/api-router';
import type { MachinesService } from '../services/machines.service';
import type { MachineTypeManager } from '../services/type-managers/type-manager';
import { bundleSchema, createMachineSchema, idParamSchema, machineSchema } from './api.schemas';

const TAG = 'machines';

/** Machines CRUD and setup bundles. */
export function machinesRoutes(
  api: ApiRouter,
  machines: MachinesService,
  types: ReadonlyMap<string, MachineTypeManager<unknown>>,
): void {
  api
    .route(
      {
        method: 'get',
        path: '/machines',
        summary: 'every machine of the registry with its peer',
        tag: TAG,
        response: z.object({ machines: z.array(machineSchema) }),
      },
      async () => ({ machines: await machines.list() }),
    )
    .route(
      {
        method: 'get',
        path: '/machine-types',
        summary: 'the machine types this manager knows',
        tag: TAG,
        response: z.object({ types: z.array(z.object({ type: z.string(), summary: z.string() })) }),
      },
      async () => ({ types: [...types.values()].map((t) => ({ type: t.type, summary: t.summary })) }),
    )
    .route(
      {
        method: 'post',
        path: '/machines',
        summary: 'register a machine: issues its certificate and Redis user, answers its setup bundle',
        tag: TAG,
        body: createMachineSchema,
        status: 201,
        response: z.object({ machine: machineSchema, bundle: bundleSchema }),
        errors: ['machine_name_taken', 'ca_not_initialised'],
      },
      async ({ body }) => machines.create(body),
    )
    .route(
      {
        method: 'get',
        path: '/machines/:id',
        summary: 'one machine',
        tag: TAG,
        params: idParamSchema,
        response: z.object({ machine: machineSchema }),
        errors: ['machine_not_found'],
      },
      async ({ params }) => ({ machine: await machines.get(params.id) }),
    )
    .route(
      {
        method: 'delete',
        path: '/machines/:id',
        summary:
          'remove a machine: its agent drains, then its peer is removed, its Redis user deleted and its certificate revoked',
        tag: TAG,
        params: idParamSchema,
        response: z.object({ machine: machineSchema }),
        errors: ['machine_not_found'],
      },
      async ({ params, res }) => {
        const machine = await machines.remove(params.id);
        if (machine.state === 'removing') res.locals.status = 202;
        return { machine };
      },
    )
    .route(
      {
        method: 'get',
        path: '/machines/:id/bundle',
        summary: 'a new setup bundle (new certificate and Redis password; the old certificate is revoked)',
        tag: TAG,
        params: idParamSchema,
        response: z.object({ bundle: bundleSchema }),
        errors: ['machine_not_found', 'machine_removed', 'ca_not_initialised'],
      },
      async ({ params }) => ({ bundle: await machines.bundle(params.id) }),
    );
}
