/** The console's operators pages' messages (src/admin/sections/). Vietnamese first. */
export const adminOperatorsVi = {
};
