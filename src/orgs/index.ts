export * from './org.service.js';
export * from './org.validation.js';
