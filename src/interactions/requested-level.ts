import { acrClaimFromParam, requestedRank } from '../provider/levels.js';
import type { InteractionView } from './oidc-interactions.js';

/** The lowest level the request requires, from `acr_values` or an essential `acr` claim request. */
export function requestedRankOf(view: InteractionView): number {
  return requestedRank(view.params.acr_values, acrClaimFromParam(view.params.claims));
}
