#!/usr/bin/env node
// Development certificates for the local pool, made the way IVIS-core makes
// them (ivis-protocol.md section 4): an X.509 v1 CA ("IVIS-core CA"), an
// executor certificate for 127.0.0.1 used as the gateway's server certificate
// and the forwarder's client certificate (svr.pem/svr.key/machine.pem), and
// IVIS-core's own certificate (ivis-core.cert/.pem) for the simulated IVIS-core.
//
// The gateway lets in only the clients named in gateway.clients. The simulated
// IVIS-core's certificate always gets the serial IVIS_SERIAL below, so that
// config/default.yaml can name it by serial and issuer; an older
// ivis-core.cert with another serial is issued again from the same CA.
// Idempotent: existing files are kept. Usage: node scripts/dev-certs.js [dir]
const fs = require('node:fs');
const path = require('node:path');
const { X509Certificate } = require('node:crypto');
const { createCa, issueCertificate } = require('../packages/common/dist');

/** gateway.clients in config/default.yaml names this serial ("IVIS" in ASCII). */
const IVIS_SERIAL = '49564953';

const dir = path.resolve(process.argv[2] ?? path.join(__dirname, '../config/certs'));
const file = (name) => path.join(dir, name);
const write = (name, text, mode = 0o644) => fs.writeFileSync(file(name), text, { mode });
const local = { ips: ['127.0.0.1', '::1'], dnsNames: ['localhost'], days: 825 };

function ensureCaAndExecutor() {
  if (fs.existsSync(file('ca.cert')) && fs.existsSync(file('svr.pem'))) return false;
  fs.mkdirSync(path.join(dir, 'ca'), { recursive: true });
  const ca = createCa({
    commonName: 'IVIS-core CA',
    subject: { O: 'IVIS-core', OU: 'IVIS-core CA' },
    v1: true,
    days: 9999,
  });
  write('ca.cert', ca.cert);
  write('ca/ca.cert', ca.cert);
  write('ca/ca.pem', ca.key, 0o600);
  const executor = issueCertificate(ca, { commonName: 'IVIS-Executor', ...local });
  write('svr.pem', executor.cert);
  write('svr.key', executor.key, 0o600);
  write('machine.pem', executor.cert + executor.key, 0o600);
  return true;
}

function ivisCertificateIsCurrent() {
  if (!fs.existsSync(file('ivis-core.cert')) || !fs.existsSync(file('ivis-core.pem'))) return false;
  const cert = new X509Certificate(fs.readFileSync(file('ivis-core.cert')));
  const ca = new X509Certificate(fs.readFileSync(file('ca.cert')));
  return BigInt(`0x${cert.serialNumber}`) === BigInt(`0x${IVIS_SERIAL}`) && cert.checkIssued(ca);
}

function ensureIvisCertificate() {
  if (ivisCertificateIsCurrent()) return false;
  const ca = {
    cert: fs.readFileSync(file('ca/ca.cert'), 'utf8'),
    key: fs.readFileSync(file('ca/ca.pem'), 'utf8'),
  };
  const ivis = issueCertificate(ca, { commonName: 'ivis-core.local', serialHex: IVIS_SERIAL, ...local });
  write('ivis-core.cert', ivis.cert);
  write('ivis-core.pem', ivis.key, 0o600);
  return true;
}

const madeCa = ensureCaAndExecutor();
const madeIvis = ensureIvisCertificate();
const fingerprint = new X509Certificate(fs.readFileSync(file('ivis-core.cert'))).fingerprint256;
process.stderr.write(
  madeCa || madeIvis
    ? `[rps] development certificates written to ${dir} (simulated IVIS-core: serial 0x${IVIS_SERIAL}, SHA-256 ${fingerprint})\n`
    : `[rps] development certificates already in ${dir}\n`,
);
