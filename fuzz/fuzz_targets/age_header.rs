//! Fuzz target `age_header`: see `fieldcase_fuzz::age_header` for what it feeds and what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fieldcase_fuzz::fuzz_one(fieldcase_fuzz::age_header, data));
