//! Zero pages: detecting an all-zero page at memory speed, and runs of zero pages.
