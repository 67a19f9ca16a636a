//! fieldcase-ffi: the uniffi bindings over `fieldcase-core` that the Android (Kotlin), iOS
//! (Swift) apps and the Python tests load as one native library.
//!
//! A thin layer: [`FieldcaseDevice`] wraps core's `Device`; the model crosses as plain records
//! and enums ([`types`]); every error crosses as one flat [`FieldcaseError`] that says what the app
//! should do, mapped from core's errors in one place ([`error`]), with panics caught at the
//! boundary. The platform keystore is a foreign trait ([`KeyStore`]), so keys cross as bytes and
//! never as strings; a sync's progress reaches the app through another ([`SyncProgressListener`]). No business logic lives here: a rule both apps need belongs in core.
//!
//! The API is synchronous (no async across the FFI): apps call it from a background thread.
//! Generate the foreign sources with the pinned `uniffi-bindgen` of `bindings/bindgen` (a separate
//! small workspace, kept out of this one's builds): `scripts/bindings-generate`.

pub mod attachments;
mod device;
pub mod error;
mod keys;
pub mod progress;
pub mod types;

pub use attachments::*;
pub use device::{
    DeviceOptions, EnrollmentInvite, FieldcaseDevice, UnlockNeeds, check_panic_boundary,
    fieldcase_version, parse_enrollment_invite, send_pending_wipe_receipt,
};
pub use error::{FieldcaseError, InviteProblem, KeyStoreError};
pub use keys::KeyStore;
pub use progress::{SyncProgress, SyncProgressListener};
pub use types::*;

uniffi::setup_scaffolding!();
