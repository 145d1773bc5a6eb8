export * from './security.routes.js';
export * from './security.controller.js';
export * from './account-actions.js';
export * from './contacts.service.js';
export * from './export.service.js';
