export * from './security.routes.js';
export * from './security.controller.js';
