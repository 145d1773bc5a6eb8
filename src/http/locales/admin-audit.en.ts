import type { adminAuditVi } from './admin-audit.vi.js';

export const adminAuditEn: Record<keyof typeof adminAuditVi, string> = {
};
