export * from './events.js';
export * from './audit.service.js';
