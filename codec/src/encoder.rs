//! The source-side encoder: picks the cheapest encoding of each page under a cost policy.
