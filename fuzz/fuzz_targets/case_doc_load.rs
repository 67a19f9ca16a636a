//! Fuzz target `case_doc_load`: see `fieldcase_fuzz::case_doc_load` for what it feeds and what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fieldcase_fuzz::fuzz_one(fieldcase_fuzz::case_doc_load, data));
