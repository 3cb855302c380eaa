#!/usr/bin/env node
// Development certificates for the local pool, made the way IVIS-core makes
// them (ivis-protocol.md section 4): an X.509 v1 CA ("IVIS-core CA"), an
// executor certificate for 127.0.0.1 used as the gateway's server certificate
// and the forwarder's client certificate (svr.pem/svr.key/machine.pem), and
// IVIS-core's own certificate (ivis-core.cert/.pem) for the simulated IVIS-core.
// Idempotent: existing files are kept. Usage: node scripts/dev-certs.js [dir]
const fs = require('node:fs');
const path = require('node:path');
const { createCa, issueCertificate } = require('../packages/common/dist');

const dir = path.resolve(process.argv[2] ?? path.join(__dirname, '../config/certs'));
const file = (name) => path.join(dir, name);
if (fs.existsSync(file('ca.cert')) && fs.existsSync(file('svr.pem'))) {
  process.stderr.write(`[rps] development certificates already in ${dir}\n`);
  process.exit(0);
}
fs.mkdirSync(path.join(dir, 'ca'), { recursive: true });
const write = (name, text, mode = 0o644) => fs.writeFileSync(file(name), text, { mode });
const ca = createCa({
  commonName: 'IVIS-core CA',
  subject: { O: 'IVIS-core', OU: 'IVIS-core CA' },
  v1: true,
  days: 9999,
});
write('ca.cert', ca.cert);
write('ca/ca.cert', ca.cert);
write('ca/ca.pem', ca.key, 0o600);
const local = { ips: ['127.0.0.1', '::1'], dnsNames: ['localhost'], days: 825 };
const executor = issueCertificate(ca, { commonName: 'IVIS-Executor', ...local });
write('svr.pem', executor.cert);
write('svr.key', executor.key, 0o600);
write('machine.pem', executor.cert + executor.key, 0o600);
const ivis = issueCertificate(ca, { commonName: 'ivis-core.local', ...local });
write('ivis-core.cert', ivis.cert);
write('ivis-core.pem', ivis.key, 0o600);
process.stderr.write(`[rps] development certificates written to ${dir}\n`);
