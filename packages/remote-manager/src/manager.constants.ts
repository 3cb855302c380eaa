/** The service's name in logs, metrics and Redis client names. */
export const SERVICE = 'remote-manager';

/** Where the admin API lives on `manager.listen`; the dashboard and `/openapi.json` sit beside it. */
export const API_PREFIX = '/api';
