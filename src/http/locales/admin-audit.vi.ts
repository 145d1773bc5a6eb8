/** The console's audit pages' messages (src/admin/sections/). Vietnamese first. */
export const adminAuditVi = {
};
