export * from './totp.service.js';
export * from './recovery.service.js';
