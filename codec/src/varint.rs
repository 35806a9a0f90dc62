//! LEB128 variable-length integers as the wire uses them (minimal encodings only).
