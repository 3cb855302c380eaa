import { manualType } from './manual.type';
import { rjrType } from './rjr.type';
import type { MachineTypeManager } from './type-manager';

/** Every machine type the manager knows: a new type is its file plus one line here. */
export const MACHINE_TYPES: ReadonlyMap<string, MachineTypeManager<unknown>> = new Map(
  [manualType, rjrType].map((t) => [t.type, t as unknown as MachineTypeManager<unknown>]),
);
