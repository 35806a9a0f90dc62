//! Frames: the stream header and every frame of the migration protocol.
