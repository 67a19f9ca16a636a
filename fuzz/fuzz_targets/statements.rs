//! Fuzz target `statements`: see `fieldcase_fuzz::statements` for what it feeds and what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fieldcase_fuzz::fuzz_one(fieldcase_fuzz::statements, data));
