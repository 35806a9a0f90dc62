//! The source's bounded cache of last-sent page versions, the base of XBZRLE deltas.
