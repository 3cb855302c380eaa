import { AppError } from '@rps/common';
import { LocalCa, type CaOptions, type InitOptions } from '../ca/local-ca';
import type { CaBackend } from './certificates.service';

/** Key sizes (tests use small ones; production keeps LocalCa's defaults). */
export interface CaBackendOptions {
  caKeyBits?: InitOptions['keyBits'];
  leafKeyBits?: CaOptions['leafKeyBits'];
}

/** The manager's CA folder through helper B's LocalCa; a folder without a CA opens as null. */
export function localCaBackend(options: CaBackendOptions = {}): CaBackend {
  const leaf: CaOptions = options.leafKeyBits ? { leafKeyBits: options.leafKeyBits } : {};
  return {
    init: (dir, opts) =>
      LocalCa.init(dir, { ...opts, ...leaf, ...(options.caKeyBits ? { keyBits: options.caKeyBits } : {}) }),
    import: (dir, files) => LocalCa.import(dir, files, leaf),
    async open(dir) {
      try {
        return await LocalCa.open(dir, leaf);
      } catch (err) {
        if (err instanceof AppError && err.code === 'ca_not_initialised') return null;
        throw err;
      }
    },
  };
}
