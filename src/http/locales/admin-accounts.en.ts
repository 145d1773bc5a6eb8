import type { adminAccountsVi } from './admin-accounts.vi.js';

export const adminAccountsEn: Record<keyof typeof adminAccountsVi, string> = {
};
