/** The console's accounts pages' messages (src/admin/sections/). Vietnamese first. */
export const adminAccountsVi = {
};
