//! Fuzz target `sync_request`: see `fieldcase_fuzz::sync_request` for what it feeds and what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fieldcase_fuzz::fuzz_one(fieldcase_fuzz::sync_request, data));
