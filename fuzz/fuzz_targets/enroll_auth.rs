//! Fuzz target `enroll_auth`: see `fieldcase_fuzz::enroll_auth` for what it feeds and what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fieldcase_fuzz::fuzz_one(fieldcase_fuzz::enroll_auth, data));
