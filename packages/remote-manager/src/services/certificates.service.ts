import { appError } from '@rps/common';

import type { CertificateInfo, IssuedCertificate, IssueRequest, RevocationWriter } from '../ca/ca.types';

// The manager's view of helper B's LocalCa (src/ca/local-ca.ts): routes and the
// machine service depend on these shapes only, tests may give another backend.

export type { CertificateInfo, IssuedCertificate, IssueRequest, RevocationWriter };

/** An open CA (LocalCa's instance side). */
export interface OpenCa {
  readonly caPem: string;
  issue(req: IssueRequest): Promise<IssuedCertificate>;
  list(): Promise<CertificateInfo[]>;
  get(serial: string): Promise<CertificateInfo | null>;
  revoke(serial: string, revocations: RevocationWriter): Promise<CertificateInfo>;
}

/** How a CA folder is opened or created (LocalCa's static side). */
export interface CaBackend {
  init(dir: string, opts?: { commonName?: string; validityDays?: number }): Promise<OpenCa>;
  import(dir: string, files: { caCertPem: string; caKeyPem: string }): Promise<OpenCa>;
  /** Resolves null when the folder holds no CA. */
  open(dir: string): Promise<OpenCa | null>;
}

/** Serials as the API takes them: hex, any case, optional 0x and colons; stored lower case without them. */
export function normalizeHexSerial(serial: string): string {
  return serial
    .replace(/^0x/i, '')
    .replace(/:/g, '')
    .toLowerCase()
    .replace(/^0+(?=.)/, '');
}

/**
 * The CA of `manager.caDir`, opened on first use (the folder may get its CA
 * through the API after the manager started).
 */
export class CertificatesService {
  private ca: OpenCa | null = null;

  constructor(
    private readonly dir: string,
    private readonly backend: CaBackend,
    private readonly revocations: RevocationWriter,
  ) {}

  /** The CA, or 409 `ca_not_initialised`. */
  async current(): Promise<OpenCa> {
    this.ca ??= await this.backend.open(this.dir);
    if (!this.ca) throw appError('ca_not_initialised');
    return this.ca;
  }

  private async refuseIfExists(): Promise<void> {
    if (this.ca ?? (await this.backend.open(this.dir))) throw appError('ca_exists');
  }

  async init(opts: { commonName?: string; validityDays?: number }): Promise<OpenCa> {
    await this.refuseIfExists();
    this.ca = await this.backend.init(this.dir, opts);
    return this.ca;
  }

  async import(files: { caCertPem: string; caKeyPem: string }): Promise<OpenCa> {
    await this.refuseIfExists();
    this.ca = await this.backend.import(this.dir, files);
    return this.ca;
  }

  async list(): Promise<CertificateInfo[]> {
    return (await this.current()).list();
  }

  async issue(req: IssueRequest): Promise<IssuedCertificate> {
    return (await this.current()).issue(req);
  }

  /** Revokes by serial (hex or decimal; idempotent) and publishes it to the gateway's revoked set. */
  async revoke(serial: string): Promise<CertificateInfo> {
    return (await this.current()).revoke(serial, this.revocations);
  }
}
