// The benchmark's IVIS-core stand-in, in its own process: one HTTPS listener
// that requires a client certificate from the CA (what the relays talk to)
// and one that asks for none (the "direct" row: wrk cannot present a client
// certificate; with keep-alive the certificate only costs at the handshake).
import fs from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';

const [dir = '', mtlsPort = '0', directPort = '0'] = process.argv.slice(2);
const read = (name: string) => fs.readFileSync(`${dir}/${name}`);
const body = Buffer.from(JSON.stringify({ ok: true, service: 'ivis-stand-in' }));
const handler = (req: IncomingMessage, res: ServerResponse) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
};
const tls = { cert: read('svr.pem'), key: read('svr.key'), ca: read('ca.cert') };
const servers = [
  https
    .createServer({ ...tls, requestCert: true, rejectUnauthorized: true }, handler)
    .listen(+mtlsPort, '127.0.0.1'),
  https.createServer(tls, handler).listen(+directPort, '127.0.0.1'),
];
for (const s of servers) s.keepAliveTimeout = 60_000;
process.on('SIGTERM', () => process.exit(0));
