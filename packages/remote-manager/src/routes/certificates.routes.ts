import { z } from 'zod';
import type { ApiRouter } from '../http/api-router';
import type { CertificatesService, OpenCa } from '../services/certificates.service';
import {
  caImportSchema,
  caInfoSchema,
  caInitSchema,
  certificateInfoSchema,
  issuedCertificateSchema,
  issueRequestSchema,
  serialParamSchema,
} from './api.schemas';

const TAG = 'certificates';

async function caInfo(ca: OpenCa) {
  const certificate = (await ca.list()).find((c) => c.kind === 'ca' || c.kind === 'imported') ?? null;
  return { caPem: ca.caPem, certificate };
}

/** The local CA: init or import, list, issue, revoke. */
export function certificatesRoutes(api: ApiRouter, certificates: CertificatesService): void {
  api
    .route(
      {
        method: 'get',
        path: '/ca',
        summary: "the CA's certificate",
        tag: TAG,
        response: caInfoSchema,
        errors: ['ca_not_initialised'],
      },
      async () => caInfo(await certificates.current()),
    )
    .route(
      {
        method: 'post',
        path: '/ca/init',
        summary: 'create a new CA in manager.caDir',
        tag: TAG,
        body: caInitSchema,
        status: 201,
        response: caInfoSchema,
        errors: ['ca_exists'],
      },
      async ({ body }) => caInfo(await certificates.init(body)),
    )
    .route(
      {
        method: 'post',
        path: '/ca/import',
        summary: "import an existing CA (IVIS-core's ca.cert and ca.pem, an X.509 v1 CA too)",
        tag: TAG,
        body: caImportSchema,
        status: 201,
        response: caInfoSchema,
        errors: ['ca_exists', 'bad_ca_files'],
      },
      async ({ body }) => caInfo(await certificates.import(body)),
    )
    .route(
      {
        method: 'get',
        path: '/certificates',
        summary: 'every certificate the CA issued (no key material)',
        tag: TAG,
        response: z.object({ certificates: z.array(certificateInfoSchema) }),
        errors: ['ca_not_initialised'],
      },
      async () => ({ certificates: await certificates.list() }),
    )
    .route(
      {
        method: 'post',
        path: '/certificates',
        summary: 'issue a server or client certificate (the answer is the only time the key is shown)',
        tag: TAG,
        body: issueRequestSchema,
        status: 201,
        response: issuedCertificateSchema,
        errors: ['ca_not_initialised'],
      },
      async ({ body }) => certificates.issue(body),
    )
    .route(
      {
        method: 'post',
        path: '/certificates/:serial/revoke',
        summary: 'revoke a certificate (the gateway refuses it within a second); idempotent',
        tag: TAG,
        params: serialParamSchema,
        response: certificateInfoSchema,
        errors: ['certificate_not_found', 'certificate_not_revocable', 'ca_not_initialised'],
      },
      async ({ params }) => certificates.revoke(params.serial),
    );
}
