//! The `pagewire` command-line tool.
fn main() {}
