import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * Paths pino blanks out wherever they appear in a log object: credentials,
 * tokens and key material must never reach the logs (DESIGN.md, operator contract).
 */
export const REDACT_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-ivis-cert-serial"]',
  'headers.authorization',
  'headers.cookie',
  '*.accessToken',
  'accessToken',
  '*.key',
  '*.privateKey',
  '*.passphrase',
  '*.password',
  'password',
  'redis.url',
  '*.codeArchive',
];

/** One pino logger per process (STYLE.md rule 8); components take `logger.child({ component })`. */
export function createLogger(options: {
  name: string;
  level: string;
  destination?: DestinationStream;
}): Logger {
  return pino(
    {
      name: options.name,
      level: options.level,
      redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
      base: { service: options.name, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination,
  );
}

/** Strips the password from a Redis URL so it can be logged. */
export function safeRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable url)';
  }
}

export type { Logger } from 'pino';
