export * from './helpers';
export * from './redis-server';
export * from './test-pki';
