import { ERRORS } from '@rps/common';
import { z } from 'zod';
import { errorSchema } from '../routes/api.schemas';
import type { AnyRouteSpec } from './api-router';

type JsonObject = Record<string, unknown>;

/** One zod schema as OpenAPI 3.0 JSON Schema; named schemas (`.meta({id})`) go to `components`. */
function toSchema(schema: z.ZodType, io: 'input' | 'output', components: JsonObject): JsonObject {
  const json = z.toJSONSchema(schema, { target: 'openapi-3.0', io, unrepresentable: 'any' }) as JsonObject;
  const rewritten = JSON.parse(
    JSON.stringify(json).replaceAll('"#/definitions/', '"#/components/schemas/'),
  ) as JsonObject;
  const { definitions, ...rest } = rewritten as { definitions?: JsonObject } & JsonObject;
  Object.assign(components, definitions ?? {});
  return rest;
}

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query', components: JsonObject) {
  if (!schema) return [];
  const json = toSchema(schema, 'input', components) as {
    properties?: Record<string, JsonObject>;
    required?: string[];
  };
  return Object.entries(json.properties ?? {}).map(([name, property]) => ({
    name,
    in: where,
    required: where === 'path' || (json.required ?? []).includes(name),
    schema: property,
  }));
}

function errorResponses(spec: AnyRouteSpec): Record<string, JsonObject> {
  const codes = ['invalid_request', 'unauthorized', 'forbidden', 'redis_unavailable', ...(spec.errors ?? [])];
  const byStatus = new Map<number, string[]>();
  for (const code of codes) {
    const entry = (ERRORS as Record<string, { status: number }>)[code];
    if (!entry) throw new Error(`route ${spec.method} ${spec.path} names unknown error code ${code}`);
    byStatus.set(entry.status, [...(byStatus.get(entry.status) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, list]) => [
      String(status),
      {
        description: list.map((c) => `\`${c}\``).join(', '),
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      },
    ]),
  );
}

/**
 * The OpenAPI 3 document of the API, generated from the same zod schemas the
 * routes validate with, so the two cannot drift apart.
 */
export function buildOpenApi(specs: readonly AnyRouteSpec[], prefix: string, version: string): JsonObject {
  const components: JsonObject = {};
  toSchema(errorSchema, 'output', components);
  const paths: Record<string, Record<string, JsonObject>> = {};
  for (const spec of specs) {
    const path = `${prefix}${spec.path}`.replace(/:([A-Za-z]+)/g, '{$1}');
    const operation: JsonObject = {
      summary: spec.summary,
      tags: [spec.tag],
      operationId: `${spec.method}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c?: string) => (c ?? '').toUpperCase())}`,
      parameters: [
        ...parameters(spec.params, 'path', components),
        ...parameters(spec.query, 'query', components),
      ],
      responses: {
        [String(spec.status ?? 200)]: {
          description: 'success',
          content: { 'application/json': { schema: toSchema(spec.response, 'output', components) } },
        },
        ...errorResponses(spec),
      },
    };
    if (spec.body) {
      operation.requestBody = {
        required: true,
        content: { 'application/json': { schema: toSchema(spec.body, 'input', components) } },
      };
    }
    paths[path] = { ...paths[path], [spec.method]: operation };
  }
  return {
    openapi: '3.0.3',
    info: {
      title: 'RPS remote-manager API',
      version,
      description:
        'The pool operator API (docs/remote-manager.md). Every /api route needs Authorization: Bearer <manager.token>.',
    },
    components: {
      schemas: components,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    },
    security: [{ bearer: [] }],
    paths,
  };
}
