export * from './peer.contract';
export * from './run.contract';
