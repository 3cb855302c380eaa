export * from './final-pushes.contract';
export * from './peer.contract';
export * from './run.contract';
export * from './stop.contract';
export * from './client-identity.contract';
