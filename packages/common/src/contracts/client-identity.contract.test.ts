import {
  canonicalDn,
  clientIdentitySchema,
  clientMatchSchema,
  normalizeFingerprint256,
  normalizeSerial,
} from './client-identity.contract';

const FP = '0D:28:B3:A7:1A:E8:54:DC:3D:88:D9:AA:CC:06:B9:00:E7:9E:CD:D4:5E:88:B7:BE:42:6B:35:CC:40:D3:C0:D8';

describe('normalizeFingerprint256', () => {
  it.each([FP, FP.toLowerCase(), FP.replace(/:/g, ''), ` ${FP} `])(
    'when given %p then it is the upper-case colon form',
    (input) => {
      expect(normalizeFingerprint256(input)).toBe(FP);
    },
  );
  it.each(['', FP.slice(3), `${FP}:00`, FP.replace('0D', 'ZZ'), `SHA256 Fingerprint=${FP}`])(
    'when given %p then it is refused',
    (input) => {
      expect(normalizeFingerprint256(input)).toBeNull();
    },
  );
});

describe('normalizeSerial', () => {
  it.each<[string | number, string]>([
    ['4096', '4096'],
    ['0004096', '4096'],
    [4096, '4096'],
    ['0x1000', '4096'],
    ['0x10:00', '4096'],
    ['0X7DF42346A8F1E2ED9AEE892BAF107531', BigInt('0x7DF42346A8F1E2ED9AEE892BAF107531').toString()],
  ])('when given %p then it is %p', (input, decimal) => {
    expect(normalizeSerial(input)).toBe(decimal);
  });
  it.each<string | number>(['', '1A', '0x', '-1', 1.5, 2 ** 60])(
    'when given %p then it is refused',
    (input) => {
      expect(normalizeSerial(input)).toBeNull();
    },
  );
});

describe('canonicalDn', () => {
  const canonical = 'CN=IVIS-core CA\nO=IVIS-core\nOU=IVIS-core CA';
  it.each([
    ['Node x509.issuer', 'O=IVIS-core\nOU=IVIS-core CA\nCN=IVIS-core CA'],
    ['OpenSSL 3 oneline', 'O = IVIS-core, OU = IVIS-core CA, CN = IVIS-core CA'],
    ['RFC 2253', 'CN=IVIS-core CA,OU=IVIS-core CA,O=IVIS-core'],
    ['old slash form', '/O=IVIS-core/OU=IVIS-core CA/CN=IVIS-core CA'],
    ['lower-case types', 'o=IVIS-core, ou=IVIS-core CA, cn=IVIS-core CA'],
  ])('when printed as %s then it has the one canonical form', (_label, text) => {
    expect(canonicalDn(text)).toBe(canonical);
  });
  it('when a value holds an escaped or quoted comma then it stays one attribute', () => {
    expect(canonicalDn('CN=a\\, b, O=x')).toBe('CN=a, b\nO=x');
    expect(canonicalDn('CN="a, b"\nO=x')).toBe('CN=a, b\nO=x');
  });
  it('when the values differ in case then the names differ', () => {
    expect(canonicalDn('CN=IVIS-core CA')).not.toBe(canonicalDn('CN=ivis-core ca'));
  });
  it.each(['', 'IVIS-core CA', 'CN=', '=x', 'CN=a,,O=b'])('when given %p then it is refused', (text) => {
    expect(canonicalDn(text)).toBeNull();
  });
});

describe('clientIdentitySchema', () => {
  it('when an entry names a fingerprint then it is normalised', () => {
    expect(clientIdentitySchema.parse({ name: 'ivis-core', fingerprint256: FP.toLowerCase() })).toEqual({
      name: 'ivis-core',
      fingerprint256: FP,
    });
  });
  it('when an entry names a serial and issuer then both are normalised', () => {
    expect(
      clientIdentitySchema.parse({
        name: 'ivis-core',
        serial: '0x1000',
        issuer: 'O = IVIS-core, CN = IVIS-core CA',
      }),
    ).toEqual({ name: 'ivis-core', serial: '4096', issuer: 'CN=IVIS-core CA\nO=IVIS-core' });
  });
  it.each<[string, Record<string, unknown>, string]>([
    ['nothing to match', { name: 'a' }, 'fingerprint256: required'],
    [
      'both forms',
      { name: 'a', fingerprint256: FP, serial: '1', issuer: 'CN=x' },
      'fingerprint256: give either',
    ],
    ['a serial alone', { name: 'a', serial: '1' }, 'issuer: serial and issuer go together'],
    [
      'a bad fingerprint',
      { name: 'a', fingerprint256: 'AB:CD' },
      'fingerprint256: must be a SHA-256 fingerprint',
    ],
    [
      'a hex serial without 0x',
      { name: 'a', serial: '1A', issuer: 'CN=x' },
      'serial: must be a decimal serial',
    ],
    ['a bad issuer', { name: 'a', serial: '1', issuer: 'nope' }, 'issuer: must be a distinguished name'],
    ['a bad name', { name: 'a b', fingerprint256: FP }, 'name: must be 1-64'],
    ['an unknown key', { name: 'a', fingerprint: FP }, 'Unrecognized key'],
  ])('when an entry has %s then the problem is named', (_label, input, problem) => {
    const result = clientIdentitySchema.safeParse(input);
    expect(result.success).toBe(false);
    const problems = result.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
    expect(problems).toContain(problem);
  });
  it('when a runtime entry has no name then clientMatchSchema still reads it', () => {
    expect(clientMatchSchema.parse({ fingerprint256: FP })).toEqual({ fingerprint256: FP });
  });
});
