//! `fieldcase-server` binary entry point.
fn main() {}
