import express, { type Request, type Response, type Router } from 'express';
import type { z } from 'zod';

type Method = 'get' | 'post' | 'delete';

/** One operation of the API: how it is validated and what it answers, for the router and /openapi.json alike. */
export interface RouteSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  method: Method;
  /** Express style, relative to the API prefix: `/machines/:id`. */
  path: string;
  summary: string;
  tag: string;
  params?: P;
  query?: Q;
  body?: B;
  /** Status of a success (default 200). */
  status?: number;
  response: z.ZodType;
  /** Error codes (docs/errors.md) this operation answers with besides the common ones. */
  errors?: string[];
}

/** The validated input a handler gets. */
export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  req: Request;
  res: Response;
}

/** Any spec, for the OpenAPI generator. */
export type AnyRouteSpec = RouteSpec<z.ZodType, z.ZodType, z.ZodType>;

/**
 * An express router whose routes are declared with their zod schemas: input
 * is parsed before the handler runs (a ZodError becomes 400 in the error
 * middleware) and the handler's return value is the JSON answer. The specs
 * it collects are what {@link buildOpenApi} turns into the document.
 */
export class ApiRouter {
  readonly router: Router = express.Router();
  readonly specs: AnyRouteSpec[] = [];

  route<
    P extends z.ZodType = z.ZodUnknown,
    Q extends z.ZodType = z.ZodUnknown,
    B extends z.ZodType = z.ZodUnknown,
  >(
    spec: RouteSpec<P, Q, B>,
    handler: (input: RouteInput<z.output<P>, z.output<Q>, z.output<B>>) => Promise<unknown>,
  ): this {
    this.specs.push(spec);
    this.router[spec.method](spec.path, async (req: Request, res: Response) => {
      const params = spec.params ? spec.params.parse(req.params) : req.params;
      const query = spec.query ? spec.query.parse(req.query) : req.query;
      const body = spec.body ? spec.body.parse(req.body ?? {}) : undefined;
      const result = await handler({
        params: params as z.output<P>,
        query: query as z.output<Q>,
        body: body as z.output<B>,
        req,
        res,
      });
      // A handler may pick another success status (202: work still in progress) in res.locals.status.
      const status = typeof res.locals.status === 'number' ? res.locals.status : (spec.status ?? 200);
      res.status(status).json(result);
    });
    return this;
  }
}
