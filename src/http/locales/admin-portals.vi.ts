/** The console's portals pages' messages (src/admin/sections/). Vietnamese first. */
export const adminPortalsVi = {
};
