export type { PopulationRegistry, RegistryAnswer, RegistryQuery, RegistryRecord } from './registry.types.js';
export { createRegistry } from './registry.js';
export { normaliseRegistryName, recordMatches, registryPhoneE164, validateRegistryRecord, RegistryInputError, type RegistryRecordInput } from './record.js';
export { appendRegistryRecord, createFileRegistry, parseRegistryText, readRegistryRecords } from './file-registry.js';
export { createHttpsRegistry, REGISTRY_BREAKER_OPEN_MS, REGISTRY_BREAKER_THRESHOLD, REGISTRY_MAX_RESPONSE_BYTES, REGISTRY_TIMEOUT_MS } from './https-registry.js';
export { createCircuitBreaker, type BreakerState, type CircuitBreaker } from './circuit-breaker.js';
