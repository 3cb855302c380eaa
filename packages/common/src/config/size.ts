const UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

/**
 * Parses a byte size as operators write it in YAML (`64mb`, `512kb`, `1048576`).
 * Returns null when the text is not a size, so the config schema can report it.
 */
export function parseByteSize(value: string | number): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : null;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(value);
  if (!match) return null;
  const amount = Number(match[1]);
  const unit = UNITS[(match[2] ?? 'b').toLowerCase()];
  if (unit === undefined) return null;
  const bytes = Math.floor(amount * unit);
  return bytes > 0 ? bytes : null;
}
