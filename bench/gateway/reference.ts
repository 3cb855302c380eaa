/**
 * Reference servers for the gateway benchmark, each run as its own process
 * so that it competes for the cores the way the gateway does:
 *
 * - `bare`: Node's https server requiring a client certificate, reading the
 *   body and answering `{}` (the ceiling of a Node mTLS endpoint);
 * - `durable`: the same plus `JSON.parse` of the body and one Redis MULTI
 *   (SET body, RPUSH id) before the answer: a naive durable server.
 *
 * Usage: node reference.js <bare|durable> <port> <cert> <key> <ca> [redisUrl]
 * Prints `ready` on stdout once listening.
 */
import fs from 'node:fs';
import https from 'node:https';
import { Redis } from 'ioredis';

const [mode, port, cert, key, ca, redisUrl] = process.argv.slice(2);
if ((mode !== 'bare' && mode !== 'durable') || !port || !cert || !key || !ca) {
  throw new Error('usage: reference.js <bare|durable> <port> <cert> <key> <ca> [redisUrl]');
}
const redis = mode === 'durable' ? new Redis(redisUrl ?? 'redis://127.0.0.1:6379') : null;
redis?.on('error', (err) => process.stderr.write(`reference redis: ${err.message}\n`));
let seq = 0;

const server = https.createServer(
  {
    cert: fs.readFileSync(cert),
    key: fs.readFileSync(key),
    ca: fs.readFileSync(ca),
    requestCert: true,
    rejectUnauthorized: true,
  },
  (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const done = () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      if (!redis) return done();
      const body = Buffer.concat(chunks);
      try {
        JSON.parse(body.toString('utf8'));
      } catch {
        res.writeHead(400).end('{}');
        return;
      }
      const id = `${process.pid}-${seq++}`;
      redis
        .multi()
        .set(`{ref}:run:${id}`, body)
        .rpush('{ref}:queue', id)
        .exec()
        .then(done, () => res.writeHead(503).end('{}'));
    });
  },
);
server.keepAliveTimeout = 60_000;
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => {
  server.close();
  redis?.disconnect();
  process.exit(0);
});
