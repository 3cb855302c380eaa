#!/usr/bin/env node
// A simulated IVIS-core for the local pool (README quick start). It plays the
// two parts IVIS-core has towards an RPS (ivis-protocol.md sections 1 and 2):
//
//   serve            HTTPS endpoints the forwarder relays peers to (trusted
//                    18443, sandbox 18444, Elasticsearch 18446), requiring the
//                    pool's client certificate like IVIS-core's Apache; answers
//                    /rest/remote/{status,emit,runRequest} with {} and, after a
//                    final status, DELETEs the run on the gateway as IVIS-core does.
//   submit DIR [ID]  tars DIR (must hold job.py) and POSTs it as run ID to the
//                    gateway over mTLS with IVIS-core's certificate (TV1), then
//                    polls GET /rps/run/ID until the run is final.
//
// Certificates come from config/certs (scripts/dev-certs.js).
const fs = require('node:fs');
const https = require('node:https');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { X509Certificate } = require('node:crypto');

const certs = path.resolve(process.env.RPS_CERTS ?? path.join(__dirname, '../config/certs'));
const read = (name) => fs.readFileSync(path.join(certs, name));
const GATEWAY = process.env.RPS_GATEWAY ?? 'https://127.0.0.1:10327';
const log = (msg, extra = {}) =>
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), msg, ...extra }) + '\n');

function ivisAgent() {
  return new https.Agent({
    ca: read('ca.cert'),
    cert: read('ivis-core.cert'),
    key: read('ivis-core.pem'),
    keepAlive: true,
  });
}

function request(method, url, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = https.request(url, {
      method,
      agent: ivisAgent(),
      timeout: 2000, // IVIS-core's commsTimeoutMs
      headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {},
    });
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout after 2000 ms')));
    req.on('error', reject);
    req.end(data);
  });
}

function readJson(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString() || 'null'));
      } catch {
        resolve(undefined);
      }
    });
  });
}

function serve() {
  const executorSerial = new X509Certificate(read('svr.pem')).serialNumber;
  const handler = (route) => async (req, res) => {
    const body = await readJson(req);
    const peer = req.socket.getPeerCertificate();
    const answer = (status, json) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
      log('request', { route, method: req.method, url: req.url, status, body: summarize(body) });
    };
    if (
      req.url.startsWith('/rest/remote/') &&
      peer?.serialNumber?.toUpperCase() !== executorSerial.toUpperCase()
    ) {
      return answer(403, {}); // IVIS-core: executor certificate of another executor
    }
    if (req.method === 'POST' && req.url === '/rest/remote/status') {
      if (!body || typeof body.runId !== 'number' || ![0, 2, 3, 4].includes(body.status?.status))
        return answer(400, {});
      if (body.status.status === 0 || body.status.status === 2) {
        // IVIS-core deletes the run on the executor before answering the push.
        const del = await request('DELETE', `${GATEWAY}/rps/run/${body.runId}`).catch((e) => ({
          status: String(e),
        }));
        log('deleted run on the gateway', { runId: body.runId, status: del.status });
      }
      return answer(200, {});
    }
    if (req.method === 'POST' && req.url === '/rest/remote/emit') return answer(body?.type ? 200 : 400, {});
    if (req.method === 'POST' && req.url === '/rest/remote/runRequest') return answer(200, {});
    return answer(200, { name: 'simulated IVIS-core', route });
  };
  const tls = {
    cert: read('ivis-core.cert'),
    key: read('ivis-core.pem'),
    ca: read('ca.cert'),
    requestCert: true,
    rejectUnauthorized: true,
  };
  for (const [route, port] of [
    ['trusted', 18443],
    ['sandbox', 18444],
    ['es', 18446],
  ]) {
    https
      .createServer(tls, handler(route))
      .listen(port, '127.0.0.1', () => log('listening', { route, port }));
  }
}

function summarize(body) {
  if (!body || typeof body !== 'object') return body;
  return JSON.parse(
    JSON.stringify(body, (k, v) => (typeof v === 'string' && v.length > 200 ? `${v.slice(0, 200)}…` : v)),
  );
}

async function submit(dir, runId = String(Math.floor(Date.now() / 1000) % 1e6)) {
  if (!fs.existsSync(path.join(dir, 'job.py'))) throw new Error(`${dir} has no job.py`);
  const tar = execFileSync('tar', ['--exclude=.git', '-cf', '-', '-C', dir, '.']);
  const body = {
    params: {},
    entities: { signalSets: {}, signals: {} },
    owned: { signalSets: {} },
    type: 'python',
    codeArchive: tar.toJSON(),
    accessToken: null,
    state: null,
    jobId: 1,
    runId: Number(runId),
    taskId: 1,
  };
  const posted = await request('POST', `${GATEWAY}/rps/run/${runId}`, body);
  log('submitted', { runId, status: posted.status, body: posted.body });
  if (posted.status !== 200) process.exit(1);
  for (let i = 0; i < 600; i++) {
    const status = await request('GET', `${GATEWAY}/rps/run/${runId}`);
    if (status.status === 404) return log('run deleted by IVIS-core after its final push', { runId });
    const parsed = JSON.parse(status.body);
    log('status', { runId, ...parsed });
    if (parsed.status === 0 || parsed.status === 2) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

const [command, ...args] = process.argv.slice(2);
if (command === 'serve') serve();
else if (command === 'submit' && args[0])
  submit(path.resolve(args[0]), args[1]).catch((e) => {
    log('failed', { error: e.message });
    process.exit(1);
  });
else {
  process.stderr.write('usage: sim-ivis-core.js serve | submit DIR [RUN_ID]\n');
  process.exit(2);
}
