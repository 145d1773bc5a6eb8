import type { adminOperatorsVi } from './admin-operators.vi.js';

export const adminOperatorsEn: Record<keyof typeof adminOperatorsVi, string> = {
};
