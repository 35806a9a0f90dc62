//! Dedup: references to pages whose identical content the destination already holds.
