export * from './connection';
export * from './keys';
export * from './lua';
export * from './instance';
export * from './readiness';
export * from './unavailable';
