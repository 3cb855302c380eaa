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
//                    shows what IVIS-core would show: status changes, the job's
//                    output as its emits arrive, and the final status with its
//                    output. `serve` appends every push it receives for a run to
//                    .rps/sim-ivis-core/run-<ID>.jsonl (RPS_SIM_STATE moves it);
//                    `submit` follows that file and polls GET /rps/run/ID.
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
const STATE = path.resolve(process.env.RPS_SIM_STATE ?? path.join(__dirname, '../.rps/sim-ivis-core'));
const pushFile = (runId) => path.join(STATE, `run-${runId}.jsonl`);
const STATES = { 0: 'SUCCESS', 1: 'RUN_FAIL_OLD', 2: 'RUN_FAIL', 3: 'RUNNING', 4: 'QUEUED' };
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
    record(req.url, body);
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

// Keeps what IVIS-core would keep of a push, per run, for `submit` to follow.
function record(url, body) {
  let entry;
  let runId;
  if (url === '/rest/remote/status' && typeof body?.runId === 'number') {
    runId = body.runId;
    entry = { kind: 'status', status: body.status?.status, output: body.output ?? '' };
  } else if (url === '/rest/remote/emit' && typeof body?.type === 'string') {
    runId = /^run\/(\d+)\//.exec(body.type)?.[1];
    entry = { kind: 'emit', type: body.type, data: body.data };
  }
  if (runId === undefined || !entry) return;
  fs.mkdirSync(STATE, { recursive: true });
  fs.appendFileSync(pushFile(runId), JSON.stringify({ time: new Date().toISOString(), ...entry }) + '\n');
}

// Prints the pushes recorded since `offset`; answers the new offset and whether a final status came.
function showPushes(runId, offset) {
  let text;
  try {
    text = fs.readFileSync(pushFile(runId), 'utf8');
  } catch {
    return { offset, final: false };
  }
  const end = text.lastIndexOf('\n') + 1;
  let final = false;
  for (const line of text.slice(offset, end).split('\n').filter(Boolean)) {
    const push = JSON.parse(line);
    if (push.kind === 'emit' && push.type.endsWith('/output')) {
      const chunks = Array.isArray(push.data) ? push.data : [String(push.data)];
      for (const chunk of chunks) process.stdout.write(`  | ${String(chunk).replace(/\n(?!$)/g, '\n  | ')}`);
    } else if (push.kind === 'emit') {
      say(`event ${push.type.replace(/^run\/\d+\//, '')}${push.data ? `: ${String(push.data).trim()}` : ''}`);
    } else if (push.kind === 'status') {
      const name = STATES[push.status] ?? String(push.status);
      if (push.status === 0 || push.status === 2) {
        final = true;
        say(`final status ${name}; output:`);
        process.stdout.write(`${push.output.replace(/\n$/, '').replace(/^/gm, '  | ')}\n`);
      } else say(`status ${name} (pushed by the peer)`);
    }
  }
  return { offset: end, final };
}

const say = (text) => process.stdout.write(`[ivis-core] ${text}\n`);

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
  try {
    fs.rmSync(pushFile(runId)); // a run id used before
  } catch {
    // none yet
  }
  const posted = await request('POST', `${GATEWAY}/rps/run/${runId}`, body);
  if (posted.status !== 200) {
    say(`the gateway refused run ${runId}: ${posted.status} ${posted.body}`);
    process.exit(1);
  }
  say(`run ${runId} submitted to ${GATEWAY}`);
  let offset = 0;
  let last;
  // Bounded like IVIS-core's patience with a demo: 10 minutes.
  for (const deadline = Date.now() + 600_000; Date.now() < deadline;) {
    const shown = showPushes(runId, offset);
    offset = shown.offset;
    if (shown.final) return say(`run ${runId} finished (IVIS-core deletes it on the gateway)`);
    const status = await request('GET', `${GATEWAY}/rps/run/${runId}`);
    if (status.status === 404) {
      // Deleted after the final push; its record may land a moment later.
      await new Promise((r) => setTimeout(r, 500));
      if (showPushes(runId, offset).final) return;
      return say(`run ${runId} was deleted; no final push reached ${pushFile(runId)} (is 'serve' running?)`);
    }
    const parsed = JSON.parse(status.body);
    if (parsed.status !== last)
      say(`status ${STATES[parsed.status] ?? parsed.status} (GET /rps/run/${runId})`);
    last = parsed.status;
    if (parsed.status === 0 || parsed.status === 2) {
      await new Promise((r) => setTimeout(r, 1000)); // the final push is on its way
      if (showPushes(runId, offset).final) return;
      say(`final status from the gateway; output:`);
      return process.stdout.write(
        `${`${parsed.output}${parsed.error}`.replace(/\n$/, '').replace(/^/gm, '  | ')}\n`,
      );
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  say(`run ${runId} did not finish within 10 minutes`);
  process.exit(1);
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
