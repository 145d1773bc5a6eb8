export * from './flow.js';
export * from './limits.js';
export * from './registration.service.js';
export * from './recovery.service.js';
export * from './selfservice.controller.js';
export * from './selfservice.routes.js';
