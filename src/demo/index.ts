export { startDemo, DEMO_CITIZEN, DemoError, type Demo, type DemoPortalInfo, type DemoSystem } from './demo.js';
export { createDemoPortal, type DemoPortal, type DemoPortalOptions } from './demo-portal.js';
