//! Fuzz target `sync_hub`: see `fieldcase_fuzz::sync_hub` for what it feeds and what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fieldcase_fuzz::fuzz_one(fieldcase_fuzz::sync_hub, data));
