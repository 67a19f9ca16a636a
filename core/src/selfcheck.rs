//! Self-checks an app can run on a phone: things that prove the library's safety nets work on
//! the device itself, not only in our tests.

/// Panics on purpose, a few frames deep inside core, and never returns.
///
/// The phone library must turn any panic inside core (automerge panics on some malformed input,
/// DESIGN.md section 11) into a typed error at the FFI boundary, never a crashed app. Calling this
/// through the bindings is how the binding tests, and an app's own start-up self-check, prove
/// that the boundary catches a panic raised in core's frames, unwinding through them.
#[allow(clippy::panic)] // the point of this function
pub fn deliberate_panic() -> ! {
    fn inner(depth: u8) -> ! {
        if depth == 0 {
            std::panic::panic_any("deliberate panic inside fieldcase-core")
        }
        inner(depth - 1)
    }
    inner(3)
}
