import { describe, it } from '@jest/globals';
import { createStore } from '../../src/store/create-store.js';
import { storeContract } from './store-contract.js';

const uri = process.env.MONGODB_URI;

if (uri) {
  // The contract tolerates a shared database (each test uses its own random keys).
  storeContract('mongodb', ({ now }) => createStore(uri, { now }));
} else {
  describe.skip('mongodb contract (skipped: set MONGODB_URI to run against MongoDB)', () => {
    it('runs the store contract against MongoDB', () => {
      // Placeholder so the skip and its reason show in the test report.
    });
  });
}
