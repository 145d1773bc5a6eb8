/** The console's orgs pages' messages (src/admin/sections/). Vietnamese first. */
export const adminOrgsVi = {
};
