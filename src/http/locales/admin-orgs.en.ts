import type { adminOrgsVi } from './admin-orgs.vi.js';

export const adminOrgsEn: Record<keyof typeof adminOrgsVi, string> = {
};
