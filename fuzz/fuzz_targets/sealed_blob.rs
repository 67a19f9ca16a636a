//! Fuzz target `sealed_blob`: see `fieldcase_fuzz::sealed_blob` for what it feeds and what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fieldcase_fuzz::fuzz_one(fieldcase_fuzz::sealed_blob, data));
