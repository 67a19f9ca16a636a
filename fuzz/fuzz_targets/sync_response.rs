//! Fuzz target `sync_response`: see `fieldcase_fuzz::sync_response` for what it feeds and what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fieldcase_fuzz::fuzz_one(fieldcase_fuzz::sync_response, data));
