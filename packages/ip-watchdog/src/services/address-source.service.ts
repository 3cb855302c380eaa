import { execFile } from 'node:child_process';
import { isIP } from 'node:net';
import os from 'node:os';
import type { RpsConfig } from '@rps/common';
import { request, type Dispatcher } from 'undici';

/** Where the public address comes from (`watchdog.source`). */
export type AddressSourceConfig = RpsConfig<'watchdog'>['watchdog']['source'];

/** A source's answer could not be used; the check fails and the recorded address stays. */
export class AddressSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AddressSourceError';
  }
}

/** What reading a source needs; injectable so unit tests touch no network or host state. */
export interface AddressSourceDeps {
  timeoutMs: number;
  dispatcher?: Dispatcher;
  networkInterfaces?: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>;
}

/** Returns `value` trimmed when it is an IPv4 or IPv6 literal, else throws naming where it came from. */
export function validAddress(value: string, from: string): string {
  const trimmed = value.trim();
  if (isIP(trimmed) === 0) {
    const shown = trimmed.length > 60 ? `${trimmed.slice(0, 60)}…` : trimmed;
    throw new AddressSourceError(`${from} gave ${JSON.stringify(shown)}, which is not an IP address`);
  }
  return trimmed;
}

/**
 * A named interface's first IPv4 address (else its first address); without a
 * name, the first non-internal IPv4 address of any interface.
 */
export function addressFromInterfaces(
  interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]>,
  name: string | null,
): string {
  if (name !== null) {
    const infos = interfaces[name];
    if (!infos || infos.length === 0)
      throw new AddressSourceError(`interface ${name} not found or has no address`);
    const chosen = infos.find((i) => i.family === 'IPv4') ?? infos[0];
    return validAddress(chosen?.address ?? '', `interface ${name}`);
  }
  for (const infos of Object.values(interfaces)) {
    const chosen = infos?.find((i) => i.family === 'IPv4' && !i.internal);
    if (chosen) return chosen.address;
  }
  throw new AddressSourceError('no non-internal IPv4 address on any interface');
}

async function addressFromHttp(url: string, deps: AddressSourceDeps): Promise<string> {
  const res = await request(url, {
    method: 'GET',
    signal: AbortSignal.timeout(deps.timeoutMs),
    ...(deps.dispatcher ? { dispatcher: deps.dispatcher } : {}),
  });
  const body = await res.body.text();
  if (res.statusCode < 200 || res.statusCode >= 300) {
    throw new AddressSourceError(`echo URL answered HTTP ${res.statusCode}`);
  }
  return validAddress(body, 'echo URL');
}

function addressFromCommand(command: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // The command is the operator's own (config file), run through a shell like the original's.
    execFile('/bin/sh', ['-c', command], { timeout: timeoutMs, maxBuffer: 64 * 1024 }, (err, stdout) => {
      if (err) {
        reject(new AddressSourceError(`command failed: ${err.message.split('\n')[0] ?? ''}`));
        return;
      }
      try {
        resolve(validAddress(stdout, 'command'));
      } catch (invalid) {
        reject(invalid instanceof Error ? invalid : new AddressSourceError(String(invalid)));
      }
    });
  });
}

/** Reads the public address from the configured source; throws {@link AddressSourceError} or a network error. */
export async function readAddress(source: AddressSourceConfig, deps: AddressSourceDeps): Promise<string> {
  switch (source.kind) {
    case 'interface':
      return addressFromInterfaces((deps.networkInterfaces ?? os.networkInterfaces)(), source.name);
    case 'http':
      return addressFromHttp(source.url, deps);
    case 'command':
      return addressFromCommand(source.command, deps.timeoutMs);
  }
}
