export * from './portal.service.js';
export * from './portal.validation.js';
export * from './scopes.js';
export * from './portal-admin.js';
