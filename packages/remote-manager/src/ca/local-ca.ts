import { X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import { appError } from '@rps/common';
import { checkCaFiles } from './ca-import';
import {
  caPaths,
  CERT_MODE,
  ensurePrivateDir,
  exists,
  KEY_MODE,
  writeFileAtomic,
  writeFileExclusive,
} from './ca-files';
import { readIndex, toInfo, writeIndex, type CaIndex, type IndexEntry } from './ca-index';
import {
  DEFAULT_VALIDITY_DAYS,
  type CaOptions,
  type CertificateInfo,
  type InitOptions,
  type IssuedCertificate,
  type IssueRequest,
  type RevocationWriter,
} from './ca.types';
import { describeCertificate, findBySerial } from './certificate-info';
import { issueRequestSchema } from './issue-request.schema';
import {
  buildCaCertificate,
  buildLeafCertificate,
  newRsaKey,
  randomSerialHex,
  type Issuer,
} from './x509-builder';

export * from './ca.types';
export { issueRequestSchema } from './issue-request.schema';

const CLOCK_SKEW_MS = 60_000;
const DAY_MS = 86_400_000;

/**
 * The pool's local CA on disk (`manager.caDir`, docs/remote-manager-ca.md):
 * made here ({@link LocalCa.init}) or imported from IVIS-core
 * ({@link LocalCa.import}, its X.509 v1 CA as it is). It issues server and
 * client certificates, lists them and revokes them by serial; a revocation
 * goes to the gateway's revoked set through a {@link RevocationWriter}.
 * Keys are 0600 in a 0700 folder and never leave through list or get; the
 * index is rewritten atomically. One process owns a CA directory: changes are
 * serialised within the instance, not across processes.
 */
export class LocalCa {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly paths: ReturnType<typeof caPaths>,
    /** The CA certificate (PEM): the trust anchor every peer and IVIS-core get as `ca.cert`. */
    readonly caPem: string,
    private readonly issuer: Issuer,
    private readonly caEntry: CertificateInfo,
    private readonly options: Required<CaOptions>,
  ) {}

  /** Makes a new CA in `dir`; refuses (`ca_exists`) if the folder holds one already. */
  static async init(dir: string, opts: InitOptions & CaOptions = {}): Promise<LocalCa> {
    const paths = caPaths(dir);
    await ensurePrivateDir(dir);
    await refuseExisting(paths);
    const key = await newRsaKey(opts.keyBits ?? 4096);
    const now = Date.now();
    const certPem = buildCaCertificate({
      key,
      serialHex: randomSerialHex(),
      subject: [
        { shortName: 'O', value: 'RPS' },
        { shortName: 'CN', value: opts.commonName ?? 'RPS local CA' },
      ],
      validity: {
        notBefore: new Date(now - CLOCK_SKEW_MS),
        days: opts.validityDays ?? DEFAULT_VALIDITY_DAYS.ca,
      },
    });
    await writeFileExclusive(paths.caKey, key.privateKeyPem, KEY_MODE);
    await writeFileExclusive(paths.caCert, certPem, CERT_MODE);
    await writeIndex(paths.index, newIndex('init'));
    return LocalCa.open(dir, opts);
  }

  /**
   * Takes over an existing CA (IVIS-core's `ca.cert` and `ca/ca.pem`): checked
   * by {@link checkCaFiles} (`bad_ca_files`), refused if `dir` holds a CA.
   */
  static async import(
    dir: string,
    files: { caCertPem: string; caKeyPem: string },
    opts: CaOptions = {},
  ): Promise<LocalCa> {
    const checked = checkCaFiles(files.caCertPem, files.caKeyPem);
    const paths = caPaths(dir);
    await ensurePrivateDir(dir);
    await refuseExisting(paths);
    await writeFileExclusive(paths.caKey, checked.keyPem, KEY_MODE);
    await writeFileExclusive(paths.caCert, checked.certPem, CERT_MODE);
    await writeIndex(paths.index, newIndex('import'));
    return LocalCa.open(dir, opts);
  }

  /**
   * Opens the CA of `dir` (`ca_not_initialised` if there is none). A
   * `ca.cert` and `ca.key` put there by hand without an index are checked
   * and adopted as an import. The key file is narrowed to 0600 if wider.
   */
  static async open(dir: string, opts: CaOptions = {}): Promise<LocalCa> {
    const paths = caPaths(dir);
    if (!(await exists(paths.caCert)) || !(await exists(paths.caKey))) {
      throw appError('ca_not_initialised', `no CA in ${dir}: initialise or import one`);
    }
    const [certPem, keyPem] = await Promise.all([
      fs.readFile(paths.caCert, 'utf8'),
      fs.readFile(paths.caKey, 'utf8'),
    ]);
    await ensurePrivateDir(dir);
    await fs.chmod(paths.caKey, KEY_MODE);
    await ensurePrivateDir(paths.issuedDir);
    const checked = checkCaFiles(certPem, keyPem);
    let index = await readIndex(paths.index);
    if (index === null) {
      index = newIndex('import');
      await writeIndex(paths.index, index);
    }
    const caEntry = describeCertificate(checked.certPem, index.origin === 'init' ? 'ca' : 'imported');
    return new LocalCa(paths, checked.certPem, { cert: checked.cert, key: checked.key }, caEntry, {
      leafKeyBits: opts.leafKeyBits ?? 2048,
    });
  }

  /** The CA directory. */
  get dir(): string {
    return this.paths.dir;
  }

  /** The CA's own certificate, described. */
  get caInfo(): CertificateInfo {
    return { ...this.caEntry };
  }

  /**
   * Issues a certificate (input checked by {@link issueRequestSchema}; a
   * ZodError maps to 400 in the error middleware): a fresh RSA key, a random
   * serial not used before, validity capped at the CA's own end. The key is
   * written 0600 as `issued/<serial>.key` and returned once, here.
   */
  async issue(request: IssueRequest): Promise<IssuedCertificate> {
    const req = issueRequestSchema.parse(request);
    const key = await newRsaKey(this.options.leafKeyBits);
    return this.exclusive(async () => {
      const index = await this.readIndex();
      const used = new Set([this.caEntry.serial, ...index.certificates.map((c) => c.serial)]);
      let serialHex = randomSerialHex();
      while (used.has(serialHex.replace(/^0+/, ''))) serialHex = randomSerialHex();
      const notBefore = req.notBefore ?? new Date(Date.now() - CLOCK_SKEW_MS);
      const caEnd = new Date(this.caEntry.notAfter).getTime();
      const wantedDays = req.validityDays ?? DEFAULT_VALIDITY_DAYS[req.kind];
      const days = Math.min(wantedDays, (caEnd - notBefore.getTime()) / DAY_MS);
      if (days <= 0) throw appError('invalid_request', 'the certificate would start after the CA expires');
      const certPem = buildLeafCertificate(
        {
          kind: req.kind,
          commonName: req.commonName,
          ips: req.ips,
          dnsNames: req.dnsNames,
          serialHex,
          publicKeyPem: key.publicKeyPem,
          validity: { notBefore, days },
        },
        this.issuer,
      );
      const info = describeCertificate(certPem, req.kind);
      await writeFileAtomic(this.paths.issuedKey(info.serial), key.privateKeyPem, KEY_MODE);
      await writeFileAtomic(this.paths.issuedCert(info.serial), certPem, CERT_MODE);
      index.certificates.push({ ...info, hasKey: true });
      await writeIndex(this.paths.index, index);
      return { info, certPem, keyPem: key.privateKeyPem, caPem: this.caPem };
    });
  }

  /**
   * Records a certificate this CA signed elsewhere (IVIS-core's own
   * `server.cert`, an executor's), so that it is listed and can be revoked.
   * Its key is not wanted and not kept. Idempotent.
   */
  async record(certPem: string): Promise<CertificateInfo> {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(certPem);
    } catch {
      throw appError('invalid_request', 'not a PEM X.509 certificate');
    }
    const ca = new X509Certificate(this.caPem);
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
      throw appError('invalid_request', 'the certificate was not issued by this CA');
    }
    return this.exclusive(async () => {
      const index = await this.readIndex();
      const info = describeCertificate(cert.toString(), 'imported');
      const known = index.certificates.find((c) => c.serial === info.serial);
      if (known) return toInfo(known);
      if (info.serial === this.caEntry.serial) return this.caInfo;
      await writeFileAtomic(this.paths.issuedCert(info.serial), cert.toString(), CERT_MODE);
      index.certificates.push({ ...info, hasKey: false });
      await writeIndex(this.paths.index, index);
      return info;
    });
  }

  /** Every certificate: the CA's own first, then the issued and recorded ones in order. No key material. */
  async list(): Promise<CertificateInfo[]> {
    const index = await this.readIndex();
    return [this.caInfo, ...index.certificates.map(toInfo)];
  }

  /** One certificate by serial (hex, or decimal), or null. */
  async get(serial: string): Promise<CertificateInfo | null> {
    const found = findBySerial(await this.list(), serial);
    return found ?? null;
  }

  /** The PEM of an issued or recorded certificate (public), or null. */
  async certificatePem(serial: string): Promise<string | null> {
    const info = await this.get(serial);
    if (!info) return null;
    if (info.serial === this.caEntry.serial) return this.caPem;
    return fs.readFile(this.paths.issuedCert(info.serial), 'utf8');
  }

  /**
   * Revokes a certificate by serial (hex, or decimal): its decimal serial goes
   * to `revocations` (the gateway's set) first, then the index marks it.
   * Idempotent: revoking again writes the serial again (repairing a set that
   * lost it) and answers the first revocation's time. The CA itself is
   * `certificate_not_revocable`; an unknown serial `certificate_not_found`.
   */
  async revoke(serial: string, revocations: RevocationWriter): Promise<CertificateInfo> {
    return this.exclusive(async () => {
      const index = await this.readIndex();
      const entry: IndexEntry | undefined = findBySerial(index.certificates, serial);
      if (!entry) {
        if (findBySerial([this.caEntry], serial)) {
          throw appError('certificate_not_revocable', 'the CA’s own certificate cannot be revoked');
        }
        throw appError('certificate_not_found', `no certificate with serial ${serial}`);
      }
      await revocations.revoke(entry.decimalSerial);
      if (!entry.revoked) {
        entry.revoked = true;
        entry.revokedAt = new Date().toISOString();
        await writeIndex(this.paths.index, index);
      }
      return toInfo(entry);
    });
  }

  private async readIndex(): Promise<CaIndex> {
    const index = await readIndex(this.paths.index);
    if (index === null) throw appError('ca_not_initialised', `the CA index of ${this.dir} is gone`);
    return index;
  }

  /** Runs index changes one after another (read, change, write). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function newIndex(origin: CaIndex['origin']): CaIndex {
  return { version: 1, origin, createdAt: new Date().toISOString(), certificates: [] };
}

async function refuseExisting(paths: ReturnType<typeof caPaths>): Promise<void> {
  for (const file of [paths.caCert, paths.caKey, paths.index]) {
    if (await exists(file)) throw appError('ca_exists', `${paths.dir} already holds a CA (${file})`);
  }
}
