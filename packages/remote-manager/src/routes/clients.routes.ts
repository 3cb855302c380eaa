import { appError, clientMatchSchema } from '@rps/common';
import { z, ZodError } from 'zod';
import type { ApiRouter } from '../http/api-router';
import type { GatewayClientsStore } from '../stores/gateway-clients.store';
import { addClientSchema, allowedClientSchema, clientNameParamSchema } from './api.schemas';

const TAG = 'clients';

const listedClientSchema = allowedClientSchema.extend({ problem: z.string().optional() });

/** The gateway's runtime allowed clients (keys.gatewayClients(), polled by the gateway). */
export function clientsRoutes(api: ApiRouter, clients: GatewayClientsStore): void {
  api
    .route(
      {
        method: 'get',
        path: '/clients',
        summary: 'allowed clients added at runtime (besides gateway.clients of the config file)',
        tag: TAG,
        response: z.object({ clients: z.array(listedClientSchema) }),
      },
      async () => ({
        clients: (await clients.list()).map((c) => ({
          name: c.name,
          ...(c.match as Record<string, string> | null),
          ...(c.problem ? { problem: c.problem } : {}),
        })),
      }),
    )
    .route(
      {
        method: 'post',
        path: '/clients',
        summary:
          'allow a client certificate, by fingerprint256 or by serial and issuer; replaces an entry of that name',
        tag: TAG,
        body: addClientSchema,
        status: 201,
        response: z.object({ client: allowedClientSchema, created: z.boolean() }),
      },
      async ({ body, res }) => {
        const { name, ...fields } = body;
        const parsed = clientMatchSchema.safeParse(fields);
        if (!parsed.success) throw new ZodError(parsed.error.issues);
        const created = await clients.set(name, parsed.data);
        if (!created) res.locals.status = 200;
        return { client: { name, ...parsed.data }, created };
      },
    )
    .route(
      {
        method: 'delete',
        path: '/clients/:name',
        summary: 'stop allowing a client added at runtime',
        tag: TAG,
        params: clientNameParamSchema,
        response: z.object({ removed: z.string() }),
        errors: ['client_not_found'],
      },
      async ({ params }) => {
        if (!(await clients.remove(params.name))) {
          throw appError('client_not_found', `no allowed client ${params.name} in the runtime list`);
        }
        return { removed: params.name };
      },
    );
}
