#!/usr/bin/env node
// The quick start's certificates and local peers, made by the running
// remote-manager through its API (instead of scripts/dev-certs.js):
//
// 1. The manager's CA in manager.caDir (config/certs/ca): kept when it is
//    there; a CA of an older quick start (scripts/dev-certs.js's IVIS-style
//    X.509 v1 CA, ca/ca.cert + ca/ca.pem) is imported (POST /api/ca/import),
//    so the certificates it issued stay valid; else a new one (POST /api/ca/init).
// 2. config/certs/ca.cert, the executor certificate the gateway serves and the
//    forwarder presents (svr.pem, svr.key, machine.pem) and the simulated
//    IVIS-core's certificate (ivis-core.cert/.pem), issued by that CA
//    (POST /api/certificates) unless the ones there already chain to it.
// 3. The simulated IVIS-core as an allowed client of the gateway
//    (POST /api/clients, by fingerprint; the gateway picks it up at runtime).
// 4. The local peers peer-1 and peer-2 as `manual` machines of the registry,
//    and each one's setup bundle (POST /api/machines, or GET
//    /api/machines/:id/bundle when it exists: a new certificate each start)
//    written to .rps/peers/<id>/; their agents start from agent.yaml there.
//
// Usage: RPS_MANAGER_TOKEN=... node scripts/manager-dev-setup.js <manager url>
// Prints the agent config file of each local peer on stdout, one a line.
const fs = require('node:fs');
const path = require('node:path');
const { X509Certificate } = require('node:crypto');

const ROOT = path.resolve(__dirname, '..');
const CERTS = path.join(ROOT, 'config/certs');
const CA_DIR = path.join(CERTS, 'ca');
const PEERS_DIR = path.join(ROOT, '.rps/peers');
const base = process.argv[2];
const token = process.env.RPS_MANAGER_TOKEN;
const local = { ips: ['127.0.0.1', '::1'], dnsNames: ['localhost'] };
// The local peers, as config/local-peer-{1,2}.yaml have them (the fallback without a manager).
const PEERS = [
  { id: 'peer-1', adminPort: 9331 },
  { id: 'peer-2', adminPort: 9333 },
];

const say = (msg) => process.stderr.write(`[rps] ${msg}\n`);

async function api(method, urlPath, body) {
  const res = await fetch(`${base}/api${urlPath}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const answer = await res.json().catch(() => ({}));
  return { status: res.status, body: answer };
}

async function must(method, urlPath, body) {
  const res = await api(method, urlPath, body);
  if (res.status >= 300) {
    throw new Error(`${method} /api${urlPath}: ${res.status} ${res.body.code ?? ''} ${res.body.error ?? ''}`);
  }
  return res.body;
}

const file = (name) => path.join(CERTS, name);
const write = (name, text, mode = 0o644) => {
  fs.writeFileSync(file(name), text, { mode });
  fs.chmodSync(file(name), mode);
};

async function ensureCa() {
  const current = await api('GET', '/ca');
  if (current.status === 200) return current.body.caPem;
  if (current.body.code !== 'ca_not_initialised') {
    throw new Error(`GET /api/ca: ${current.status} ${current.body.code ?? ''} ${current.body.error ?? ''}`);
  }
  const oldCert = path.join(CA_DIR, 'ca.cert');
  const oldKey = path.join(CA_DIR, 'ca.pem');
  if (fs.existsSync(oldCert) && fs.existsSync(oldKey)) {
    // scripts/dev-certs.js's layout: move it aside (LocalCa refuses a folder
    // with a ca.cert it did not write) and import the same CA.
    const aside = path.join(CERTS, `ca.dev-certs-${Date.now()}`);
    fs.renameSync(CA_DIR, aside);
    const caCertPem = fs.readFileSync(path.join(aside, 'ca.cert'), 'utf8');
    const caKeyPem = fs.readFileSync(path.join(aside, 'ca.pem'), 'utf8');
    const imported = await must('POST', '/ca/import', { caCertPem, caKeyPem });
    say(
      `imported the development CA of scripts/dev-certs.js into the manager (old folder: ${path.relative(ROOT, aside)})`,
    );
    return imported.caPem;
  }
  const made = await must('POST', '/ca/init', { commonName: 'RPS development CA' });
  say('the manager made a new development CA in config/certs/ca');
  return made.caPem;
}

/** Whether certs/<name> exists and was issued by the CA `caPem`. */
function issuedBy(name, caPem) {
  if (!fs.existsSync(file(name))) return false;
  try {
    return new X509Certificate(fs.readFileSync(file(name))).checkIssued(new X509Certificate(caPem));
  } catch {
    return false;
  }
}

async function ensureCertificates(caPem) {
  fs.mkdirSync(CERTS, { recursive: true });
  write('ca.cert', caPem);
  if (!(issuedBy('svr.pem', caPem) && fs.existsSync(file('svr.key')))) {
    const svr = await must('POST', '/certificates', {
      kind: 'server',
      commonName: 'IVIS-Executor',
      ...local,
    });
    write('svr.pem', svr.certPem);
    write('svr.key', svr.keyPem, 0o600);
    write('machine.pem', svr.certPem + svr.keyPem, 0o600);
    say('the manager issued the executor certificate (config/certs/svr.pem)');
  }
  // The simulated IVIS-core serves its endpoints with this certificate and
  // presents it to the gateway: a server certificate (serverAuth + clientAuth).
  if (!(issuedBy('ivis-core.cert', caPem) && fs.existsSync(file('ivis-core.pem')))) {
    const ivis = await must('POST', '/certificates', {
      kind: 'server',
      commonName: 'ivis-core.local',
      ...local,
    });
    write('ivis-core.cert', ivis.certPem);
    write('ivis-core.pem', ivis.keyPem, 0o600);
    say('the manager issued the simulated IVIS-core certificate (config/certs/ivis-core.cert)');
  }
  const fingerprint256 = new X509Certificate(fs.readFileSync(file('ivis-core.cert'))).fingerprint256;
  await must('POST', '/clients', { name: 'ivis-core', fingerprint256 });
}

async function ensurePeer({ id, adminPort }) {
  const n = id.split('-')[1];
  const parameters = {
    workDir: path.join(ROOT, '.rps/agents', id),
    python: '/usr/bin/python3', // the system's: the job user (rps-job) must reach it
    subtypes: { __default__: { libs: [] } },
    runAs: 'rps-job',
    allowSameUser: true, // development: a non-root agent runs jobs as itself
    adminPort,
  };
  const existing = await api('GET', `/machines/${id}`);
  let bundle;
  if (existing.status === 200) {
    bundle = (await must('GET', `/machines/${id}/bundle`)).bundle;
  } else if (existing.status === 404) {
    const body = {
      id,
      name: `local peer ${n}`,
      address: '127.0.0.1',
      type: 'manual',
      capacity: 2,
      parameters,
    };
    bundle = (await must('POST', '/machines', body)).bundle;
  } else {
    throw new Error(`GET /api/machines/${id}: ${existing.status} ${existing.body.code ?? ''}`);
  }
  const dir = path.join(PEERS_DIR, id);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const f of bundle.files) {
    const mode = parseInt(f.mode, 8);
    fs.writeFileSync(path.join(dir, f.name), f.content, { mode });
    fs.chmodSync(path.join(dir, f.name), mode);
  }
  return path.join(dir, 'agent.yaml');
}

async function main() {
  if (!base || !token)
    throw new Error('usage: RPS_MANAGER_TOKEN=... node scripts/manager-dev-setup.js <manager url>');
  const caPem = await ensureCa();
  await ensureCertificates(caPem);
  const configs = [];
  for (const peer of PEERS) configs.push(await ensurePeer(peer));
  say(
    `local peers registered with the manager; their setup bundles are in ${path.relative(ROOT, PEERS_DIR)}/`,
  );
  process.stdout.write(configs.join('\n') + '\n');
}

main().catch((err) => {
  say(`manager setup failed: ${err.message}`);
  process.exit(1);
});
