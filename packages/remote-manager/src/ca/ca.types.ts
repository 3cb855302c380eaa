/** What {@link LocalCa.issue} makes. */
export interface IssueRequest {
  /**
   * `server`: EKU serverAuth and clientAuth (a peer's forwarder presents its
   * server certificate as client certificate towards IVIS-core, as IVIS's
   * executor certificates do). `client`: clientAuth only.
   */
  kind: 'server' | 'client';
  commonName: string;
  /** subjectAltName IP addresses (IPv4 or IPv6). */
  ips?: string[];
  /** subjectAltName DNS names. */
  dnsNames?: string[];
  /** Default {@link DEFAULT_VALIDITY_DAYS} of the kind: 825 server, 365 client. */
  validityDays?: number;
  /** Start of validity; default one minute ago (clock skew). A past date makes a backdated (even expired) certificate. */
  notBefore?: Date;
}

/** What the index holds of a certificate, and what list/get answer: never key material. */
export interface CertificateInfo {
  /** Hex, lower case, no `0x`, no leading zeros. */
  serial: string;
  /** The same serial in decimal: what the gateway's revoked set and IVIS-core's `cert_serial` hold. */
  decimalSerial: string;
  /** `ca`: the CA made by init; `imported`: an imported CA, or a certificate of the CA recorded by {@link LocalCa.record}. */
  kind: 'server' | 'client' | 'ca' | 'imported';
  commonName: string;
  /** As Node's X509Certificate prints it, one attribute per line joined by ", ". */
  subject: string;
  issuer: string;
  ips: string[];
  dnsNames: string[];
  /** ISO 8601. */
  notBefore: string;
  notAfter: string;
  /** `AB:CD:...`, as Node's X509Certificate prints it. */
  fingerprint256: string;
  revoked: boolean;
  revokedAt: string | null;
}

/** A fresh certificate with its key: the only place a leaf's key is handed out. */
export interface IssuedCertificate {
  info: CertificateInfo;
  certPem: string;
  keyPem: string;
  /** The CA certificate the peer trusts (`ca.cert`). */
  caPem: string;
}

/** Where a revocation goes so that the gateway enforces it (the Redis set `keys.revokedSerials()`). */
export interface RevocationWriter {
  revoke(decimalSerial: string): Promise<void>;
}

/** Options of {@link LocalCa.init}. */
export interface InitOptions {
  /** Default `RPS local CA`. */
  commonName?: string;
  /** Default 3650. */
  validityDays?: number;
  /** RSA modulus length of the CA key; default 4096 (as IVIS-core's CA). */
  keyBits?: number;
}

/** Options every LocalCa method that makes keys takes (at open, import or init). */
export interface CaOptions {
  /** RSA modulus length of issued certificates' keys; default 2048. */
  leafKeyBits?: number;
}

/** Validity defaults per kind, in days. */
export const DEFAULT_VALIDITY_DAYS = { server: 825, client: 365, ca: 3650 } as const;

/** The longest validity accepted, in days (IVIS-core's own certificates have 9999). */
export const MAX_VALIDITY_DAYS = 9999;
