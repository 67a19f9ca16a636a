//! Shared harness for fieldcase end-to-end tests.
