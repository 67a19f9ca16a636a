//! The uniffi bindgen, pinned to the library's uniffi version: generates the Kotlin, Swift and
//! Python sources from the built cdylib (`generate --library target/debug/libfieldcase_ffi.so`).

fn main() {
    uniffi::uniffi_bindgen_main()
}
