export * from './roles.js';
export * from './operators.service.js';
export * from './approvals.service.js';
export * from './actions.js';
