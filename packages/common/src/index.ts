export * from './config';
export * from './http';
export * from './lifecycle';
export * from './log/logger';
export * from './redis';
export * from './runs/run-state';
export * from './tls';
export * from './wire/ivis.schemas';
