export * from './outbox-drainer';
export * from './push-outbox.store';
export * from './push-processor';
