export * from './account.service.js';
export * from './authentication.service.js';
export * from './password-hasher.js';
export * from './password-policy.js';
export * from './pid.js';
export * from './names.js';
export * from './account-admin.service.js';
export * from './account-state.js';
