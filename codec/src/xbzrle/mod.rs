//! XBZRLE: QEMU's delta encoding of a page against its previous version.
