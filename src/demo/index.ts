export { startDemo, seedDemoRegistry, demoRegistrationLines, DEMO_CITIZEN, DEMO_REGISTRY_PEOPLE, DemoError, type Demo, type DemoPortalInfo, type DemoSystem } from './demo.js';
export { createDemoPortal, type DemoPortal, type DemoPortalOptions } from './demo-portal.js';
