import { appError } from '@rps/common';

// The manager's side of helper B's LocalCa (src/ca/local-ca.ts): the shapes it
// relies on, so the routes and the machine service depend on these only.

export interface IssueRequest {
  kind: 'server' | 'client';
  commonName: string;
  ips?: string[];
  dnsNames?: string[];
  validityDays?: number;
}

export interface CertificateInfo {
  serial: string;
  decimalSerial: string;
  kind: 'server' | 'client' | 'ca' | 'imported';
  commonName: string;
  subject: string;
  issuer: string;
  ips: string[];
  dnsNames: string[];
  notBefore: string;
  notAfter: string;
  fingerprint256: string;
  revoked: boolean;
  revokedAt: string | null;
}

export interface IssuedCertificate {
  info: CertificateInfo;
  certPem: string;
  keyPem: string;
  caPem: string;
}

export interface RevocationWriter {
  revoke(decimalSerial: string): Promise<void>;
}

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

  /** Revokes (idempotent) and publishes the serial to the gateway's revoked set; 404 for an unknown serial. */
  async revoke(serial: string): Promise<CertificateInfo> {
    const ca = await this.current();
    const hex = normalizeHexSerial(serial);
    if (!(await ca.get(hex))) throw appError('certificate_not_found', `no certificate with serial ${hex}`);
    return ca.revoke(hex, this.revocations);
  }
}
