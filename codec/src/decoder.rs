//! The destination-side decoder: applies page records to destination memory.
