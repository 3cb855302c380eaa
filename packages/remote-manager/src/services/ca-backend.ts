import { appError } from '@rps/common';
import type { CaBackend } from './certificates.service';

/**
 * The CA folder's backend. Placeholder until helper B's LocalCa (src/ca/local-ca.ts)
 * is merged: no CA can be opened or made, so machine creation answers `ca_not_initialised`.
 */
export function localCaBackend(): CaBackend {
  const unavailable = () => Promise.reject(appError('ca_not_initialised', 'this build has no local CA yet'));
  return { init: unavailable, import: unavailable, open: () => Promise.resolve(null) };
}
