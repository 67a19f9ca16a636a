//! Random identifiers (UUIDv4, no creation time in them) for cases, notes, tasks, users and devices.
//!
//! Ids carry no personal data, so they may appear in file names, URLs and log lines.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random id (UUIDv4). It carries no creation time: an id stored or shown
            /// on a phone must not tell whoever reads it when a note was written or a case opened.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
            /// Wraps an existing UUID.
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }
            /// The underlying UUID.
            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
            /// The 16 raw bytes, used as SQLite keys.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
            /// Rebuilds an id from 16 raw bytes.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                Uuid::from_slice(bytes).ok().map(Self)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = crate::model::ValidationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| crate::model::ValidationError::InvalidId(stringify!($name)))
            }
        }
    };
}

id_type!(
    /// Identifies one case (one client's file) everywhere: phone, server, sync.
    CaseId
);
id_type!(
    /// Identifies one visit note inside its case.
    NoteId
);
id_type!(
    /// Identifies one accompaniment task inside its case.
    TaskId
);
id_type!(
    /// Identifies one item of a task's document checklist.
    ChecklistItemId
);
id_type!(
    /// Identifies one goal of a case's individual recovery plan.
    GoalId
);
id_type!(
    /// Identifies one service given to the client, recorded in the recovery plan.
    ServiceId
);
id_type!(
    /// Identifies one review of a case's recovery plan.
    ReviewId
);
id_type!(
    /// Identifies one attachment (a photo or scan) of a case.
    AttachmentId
);
id_type!(
    /// Identifies a person who uses fieldcase (field worker, case manager, admin).
    UserId
);
id_type!(
    /// Identifies one enrolled phone (or the office server when it edits).
    DeviceId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_id_is_random_and_carries_no_time() {
        let (a, b) = (NoteId::new(), NoteId::new());
        assert_ne!(a, b);
        for id in [
            *a.as_uuid(),
            *CaseId::new().as_uuid(),
            *TaskId::new().as_uuid(),
        ] {
            assert_eq!(id.get_version_num(), 4);
            assert!(id.get_timestamp().is_none());
        }
    }
}
