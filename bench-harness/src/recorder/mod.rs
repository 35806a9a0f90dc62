//! The recorder: captures the writes of a real Linux process into a trace.
