//! Errors, split by whose fault: malformed bytes, a misbehaving peer, an incompatible peer.
