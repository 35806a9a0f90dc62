//! Destination memory: the trait the decoder writes pages through, and an in-memory backend.
