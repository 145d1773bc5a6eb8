export * from './totp.service.js';
export * from './recovery.service.js';
export * from './message-code.service.js';
export * from './notifier/index.js';
export * from './passkey.service.js';
export * from './factor-notices.js';
