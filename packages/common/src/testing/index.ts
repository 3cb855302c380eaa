export * from './helpers';
export * from './redis-server';
export * from './test-pki';
export * from './redis-proxy';
export * from './free-port';
