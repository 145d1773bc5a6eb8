/**
 * The bridge between oidc-provider's adapter contract and our store. Portals (the `Client` model)
 * are read from the portal registry, with the client secret decrypted only here.
 */
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Store } from '../store/index.js';
import type { PortalService } from '../portals/index.js';
import { presentedClientSecret } from './client-secret-grace.js';

const REPLAY_DETECTION = 'ReplayDetection';
/** How long a jti is kept when the library's own save (with the proof's real expiry) never follows. */
const REPLAY_MARK_SECONDS = 10 * 60;

export function createAdapterClass(store: Store, portals: PortalService): new (model: string) => Adapter {
  return class StoreAdapter implements Adapter {
    constructor(readonly model: string) {}

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (this.model === 'Client') throw new Error('portals are registered through the CLI, not the adapter');
      await store.oidc.upsert(this.model, id, payload as Record<string, unknown>, expiresIn);
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      // A rotated secret's grace period: the request's own secret decides which of the portal's
      // valid secrets the library compares against (client-secret-grace.ts).
      if (this.model === 'Client') return (await portals.clientMetadata(id, presentedClientSecret(id))) as AdapterPayload | undefined;
      if (this.model === REPLAY_DETECTION) {
        // oidc-provider asks whether a DPoP proof's (or a client assertion's) jti was seen, then
        // records it: two separate steps, so two instances given the same proof at once could
        // both see it as new. Here the question is an atomic insert-if-absent in the shared store
        // (RFC 9449 §11.1): the one call that inserts answers "not seen", every other "seen". The
        // library's save that follows only corrects the record's expiry.
        const inserted = await store.oidc.insertIfAbsent(REPLAY_DETECTION, id, { jti: id }, REPLAY_MARK_SECONDS);
        return inserted ? undefined : ({ jti: id } as AdapterPayload);
      }
      return (await store.oidc.find(this.model, id)) as AdapterPayload | undefined;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return (await store.oidc.findByUid(this.model, uid)) as AdapterPayload | undefined;
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return (await store.oidc.findByUserCode(this.model, userCode)) as AdapterPayload | undefined;
    }

    async consume(id: string): Promise<void> {
      // oidc-provider checks `consumed` on the record it found and then calls consume(); two
      // parallel redemptions can both pass that check. The store's consume is an atomic
      // compare-and-set, so only one caller wins; the others get invalid_grant (RFC 6749 §4.1.2:
      // a code is single use). Non-concurrent replays are caught (and the grant revoked) by the
      // library's own `consumed` check.
      const won = await store.oidc.consume(this.model, id);
      if (!won) throw new errors.InvalidGrant(`${this.model} already consumed`);
    }

    async destroy(id: string): Promise<void> {
      await store.oidc.destroy(this.model, id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await store.oidc.revokeByGrantId(this.model, grantId);
    }
  };
}
