//! uniffi bindings over fieldcase-core (filled by the bindings issue).
