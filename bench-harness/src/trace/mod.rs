//! Dirty-page traces: the file format (spec/trace.md), its reader and writer, and generators.
