// The page's elements by id: the one DOM helper every panel uses.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);
