export * from './admin';
export * from './app-error';
export * from './middleware';
export * from './error-catalog';
