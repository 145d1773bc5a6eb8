/**
 * An account's changes of state, as one table (ARCHITECTURE.md rule 12; GOV.UK One Login's
 * account interventions keep theirs the same way): for each change, which states it starts from,
 * which it leads to, and what it ends — in the store, at once, whichever door it came through (the
 * citizen's pages, the CLI, later the operators' console). `test/integration/state-changes.test.ts`
 * has one row per change, met by a live browser and a live portal.
 *
 * What a change ends:
 * - `everything`: every session and every grant and token of the person, `offline_access` ones
 *   included, and whatever was signed in or issued before now (store/types.ts, accessRevokedBefore);
 * - `other-sessions`: every session but the one the change was made in, with the grants they made
 *   (as a sign-out ends them);
 * - `others-and-grants`: the same, and every other grant and token of the person, `offline_access`
 *   ones included (only the session the change was made in keeps its own);
 * - `session`: the one session named;
 * - `portal`: every grant and token of the person at one portal;
 * - `nothing`.
 */
import type { LockReason, PersonRepository, PersonStatus } from '../store/index.js';
import type { Access } from '../provider/access.js';
import type { LogoutReason } from '../provider/backchannel-logout.js';
import type { SessionLifecycle } from '../provider/session-lifecycle.js';

export type Ends = 'everything' | 'other-sessions' | 'others-and-grants' | 'session' | 'portal' | 'nothing';

/**
 * An account's state: active, or locked for one of the reasons of store/types.ts (LockReason). A
 * lock recorded before reasons were (no reason) is an operator's.
 */
export type AccountStateName = 'active' | `locked:${LockReason}`;

export const ACCOUNT_STATES: readonly AccountStateName[] = ['active', 'locked:self', 'locked:operator', 'locked:fraud', 'locked:failures'];

export function stateOf(person: { status: PersonStatus; lockReason?: LockReason | null }): AccountStateName {
  return person.status === 'active' ? 'active' : `locked:${person.lockReason ?? 'operator'}`;
}

const ANY_LOCK = ['locked:self', 'locked:operator', 'locked:fraud', 'locked:failures'] as const;

export interface AccountChange {
  /** The states the change applies to. */
  from: readonly AccountStateName[];
  /** The status it leaves (unchanged when absent). */
  to?: PersonStatus;
  /** With `to: 'locked'`: why, which decides who may unlock (store/types.ts, LockReason). */
  lockReason?: LockReason;
  ends: Ends;
  /** Recorded with the back-channel logout deliveries it causes. */
  reason: LogoutReason;
  /**
   * Made by an operator only once a second operator approved it (admin/approvals.service.ts), or
   * by an `admin` with `--break-glass` (flagged in the audit log).
   */
  twoPerson?: true;
}

export const ACCOUNT_CHANGES = {
  // Operators (the console and the CLI). A lock (re-locking records the new reason) never lifts a
  // fraud lock: only its own two-person unlock does.
  lock: { from: ['active', 'locked:self', 'locked:operator', 'locked:failures'], to: 'locked', lockReason: 'operator', ends: 'everything', reason: 'account_locked' },
  // Suspected takeover or misuse: the same effect, but unlocking needs a second operator.
  'lock-for-fraud': { from: ['active', ...ANY_LOCK], to: 'locked', lockReason: 'fraud', ends: 'everything', reason: 'account_locked' },
  // NIST SP 800-63B §5.2.2's hard limit: the same as an operator's lock (an unlock restores nothing).
  'lock-by-failures': { from: ['active'], to: 'locked', lockReason: 'failures', ends: 'everything', reason: 'account_locked' },
  // An operator at the counter (the person shown in person) lifts any lock but a fraud lock.
  unlock: { from: ['locked:self', 'locked:operator', 'locked:failures', 'active'], to: 'active', ends: 'nothing', reason: 'account_locked' },
  'unlock-fraud': { from: ['locked:fraud'], to: 'active', ends: 'nothing', reason: 'account_locked', twoPerson: true },
  'reset-mfa': { from: ['active', ...ANY_LOCK], ends: 'everything', reason: 'mfa_reset' },
  // A higher identity level takes nothing away; a lower one ends what rested on the higher level.
  // Raising to level 2 is the act that makes every `high` sign-in possible: a second operator checks it.
  'raise-level': { from: ['active', ...ANY_LOCK], ends: 'nothing', reason: 'level_lowered', twoPerson: true },
  'lower-level': { from: ['active', ...ANY_LOCK], ends: 'everything', reason: 'level_lowered' },
  // The citizen, in the account area.
  'remove-factor': { from: ['active'], ends: 'other-sessions', reason: 'factor_removed' },
  'end-session': { from: ['active'], ends: 'session', reason: 'ended_elsewhere' },
  'withdraw-consent': { from: ['active'], ends: 'portal', reason: 'consent_withdrawn' },
  // A new password, knowing the old one: whoever else held the old one loses every session but
  // this one (NIST SP 800-63B §6.1.2.3 asks for the same after a compromise; ASVS 5.0 7.4.3).
  'change-password': { from: ['active'], ends: 'others-and-grants', reason: 'password_changed' },
  // A phone or e-mail added, proven, removed or chosen for notices: portals see the new value at
  // userinfo; nothing ends unless the person also asks to end the other sessions (next row).
  'change-contact': { from: ['active'], ends: 'nothing', reason: 'ended_elsewhere' },
  // "Sign out everywhere else", offered with every change of a contact or a second factor (ASVS
  // 5.0 7.4.3).
  'end-other-sessions': { from: ['active'], ends: 'other-sessions', reason: 'ended_elsewhere' },
  // "This wasn't me" (from a sign-in in the activity list, or the new-browser notice's link): every
  // session and grant ends, this browser's too, and the password may not be used again until it
  // is replaced through recovery (the caller sets that flag and the operators' one).
  'not-me': { from: ['active'], ends: 'everything', reason: 'not_me' },
  // "Lock my account" (a stolen phone): at once, everything ends. Only recovery with the second
  // factor, or an operator at the counter, unlocks it.
  'self-lock': { from: ['active'], to: 'locked', lockReason: 'self', ends: 'everything', reason: 'self_locked' },
  // Recovery with the second factor of an account its owner locked: a new password, unlocked, and
  // whatever was signed in before ends (nothing should be, but a session written back late counts
  // for nothing either).
  'self-unlock': { from: ['locked:self'], to: 'active', ends: 'everything', reason: 'password_reset' },
  // Self-service recovery (selfservice/): a new password proven by a contact (and the second factor
  // when there is one) ends everything the old one held, offline grants included (NIST SP 800-63B
  // §6.1.2.3: whoever knew the old password loses what it gave them).
  'reset-password': { from: ['active'], ends: 'everything', reason: 'password_reset' },
  // Every factor lost: after the waiting period, a new password, no factors, level 1.
  'account-reset': { from: ['active'], ends: 'everything', reason: 'account_reset' },
} as const satisfies Record<string, AccountChange>;

export type AccountChangeName = keyof typeof ACCOUNT_CHANGES;

export class AccountStateError extends Error {
  constructor(readonly change: AccountChangeName, readonly state: AccountStateName) {
    super(`${change} does not apply to an account that is ${state.replace(':', ' by ').replace('by self', 'by its owner').replace('by failures', 'after failed sign-ins').replace('by fraud', 'for fraud')}`);
    this.name = 'AccountStateError';
  }
}

export function createAccountState(deps: { persons: PersonRepository; access: Access; sessions: Pick<SessionLifecycle, 'end'> }) {
  return {
    /**
     * Applies a change to a person whose current status is `status`: checks it applies, sets the
     * new status, and ends what the change ends. `session` names the session the change was made
     * in (`other-sessions`) or the one to end (`session`); `clientId` the portal (`portal`).
     * Returns how many sessions (or, for `portal`, records) ended.
     */
    async apply(name: AccountChangeName, person: { id: string; status: PersonStatus; lockReason?: LockReason | null }, target: { session?: string; clientId?: string } = {}): Promise<number> {
      const change: AccountChange = ACCOUNT_CHANGES[name];
      const state = stateOf(person);
      if (!change.from.includes(state)) throw new AccountStateError(name, state);
      if (change.to && (change.to !== person.status || change.lockReason)) await deps.persons.setStatus(person.id, change.to, change.lockReason);
      switch (change.ends) {
        case 'everything':
          return deps.access.endEverything(person.id, change.reason);
        case 'other-sessions':
          return deps.access.endSessions(person.id, change.reason, { except: target.session });
        case 'others-and-grants':
          if (!target.session) throw new TypeError(`${name} needs the session it was made in`);
          return deps.access.endOthersAndGrants(person.id, change.reason, target.session);
        case 'session': {
          if (!target.session) throw new TypeError(`${name} needs the session to end`);
          return (await deps.sessions.end(target.session, change.reason, person.id)) ? 1 : 0;
        }
        case 'portal':
          if (!target.clientId) throw new TypeError(`${name} needs the portal`);
          return deps.access.endPortal(person.id, target.clientId, change.reason);
        case 'nothing':
          return 0;
      }
    },
  };
}
export type AccountState = ReturnType<typeof createAccountState>;
