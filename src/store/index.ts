export * from './types.js';
export { createStore, type CreateStoreOptions } from './create-store.js';
export { copyStore, summarise as summariseCollection, StoreCopyError, type CollectionSummary } from './store-copy.js';
