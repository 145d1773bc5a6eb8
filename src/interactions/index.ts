export * from './oidc-interactions.js';
export * from './interaction.routes.js';
export * from './logout.middleware.js';
