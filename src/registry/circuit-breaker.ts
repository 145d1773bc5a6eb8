/**
 * A circuit breaker for the population registry adapter (the pattern of Nygard, "Release It!",
 * ch. 5): after `threshold` consecutive failures it opens, and for `openMs` every question is
 * answered "unavailable" at once, without a request — a registry that is down is not hammered by
 * every registration, and citizens are not kept waiting for a timeout each. Then it is half-open: one
 * probe goes through; its success closes the breaker, its failure opens it again for `openMs`.
 *
 * Hand-written rather than a library (opossum and the like wrap promises with timers, events and
 * statistics): the registry needs three states, a counter and a clock, and the clock is injected so
 * tests move time without waiting.
 */
export type BreakerState = 'closed' | 'open' | 'half_open';

export interface CircuitBreaker {
  /** Whether a request may be made now. In the half-open state only the first caller gets true. */
  allow(): boolean;
  /** The registry answered (whatever the answer). */
  success(): void;
  /** The registry could not be asked or gave no usable answer. */
  failure(): void;
  state(): BreakerState;
}

export function createCircuitBreaker(options: {
  threshold: number;
  openMs: number;
  now: () => number;
  onOpen?: (failures: number) => void;
  onClose?: () => void;
}): CircuitBreaker {
  const { threshold, openMs, now } = options;
  let state: BreakerState = 'closed';
  let failures = 0;
  let openedAt = 0;
  let probing = false;

  const open = () => {
    state = 'open';
    openedAt = now();
    probing = false;
    options.onOpen?.(failures);
  };

  return {
    allow() {
      if (state === 'closed') return true;
      if (state === 'open') {
        if (now() - openedAt < openMs) return false;
        state = 'half_open';
        probing = false;
      }
      // Half-open: one probe at a time; the others are answered at once until it settles.
      if (probing) return false;
      probing = true;
      return true;
    },
    success() {
      const wasClosed = state === 'closed';
      state = 'closed';
      failures = 0;
      probing = false;
      if (!wasClosed) options.onClose?.();
    },
    failure() {
      failures += 1;
      if (state === 'half_open') open();
      else if (state === 'closed' && failures >= threshold) open();
      // Open: a late failure of a request made before it opened changes nothing.
    },
    state: () => state,
  };
}
