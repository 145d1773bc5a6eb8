import type { adminPortalsVi } from './admin-portals.vi.js';

export const adminPortalsEn: Record<keyof typeof adminPortalsVi, string> = {
};
