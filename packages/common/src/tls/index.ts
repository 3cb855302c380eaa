export * from './tls-files';
export * from './pki';
