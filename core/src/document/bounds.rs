//! Bounds on the shape of a case document received from elsewhere.
//!
//! automerge accepts any well-formed change, so a hostile or broken peer could send changes that
//! are valid automerge but no case document we write: maps nested thousands deep, a "note" of
//! hundreds of megabytes, a string where the notes map belongs. [`CaseDoc::check_bounds`] walks
//! the merged document (every concurrent value too, since conflicts are shown) and refuses what
//! our layout never holds, before the hub stores it.

use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, Value};

use super::CaseDoc;
use crate::error::{CoreError, Result};
use crate::model::Limits;

/// Deepest object nesting below the root. Our layout reaches 4
/// (`tasks / task / checklist / item`); the rest is headroom.
pub const MAX_DEPTH: usize = 8;
/// Longest text or string value: four note bodies, so that concurrent edits of one note that
/// each stayed within [`Limits::NOTE_BODY_MAX`] still merge.
pub const MAX_TEXT_BYTES: usize = 4 * Limits::NOTE_BODY_MAX;
/// Root keys that always hold maps.
const MAP_KEYS: [&str; 4] = ["notes", "tasks", "assigned", "authors"];
/// Most values in one map or list (notes of a case, items of a checklist, ...).
pub const MAX_ENTRIES: usize = 100_000;

fn refuse(why: &'static str) -> CoreError {
    CoreError::Document(why)
}

impl CaseDoc {
    /// Checks that the document keeps the shape of a case: it reads as a case, its notes, tasks,
    /// assignments and authors are maps, no object nests
    /// deeper than [`MAX_DEPTH`], no text or string is longer than [`MAX_TEXT_BYTES`], no map or
    /// list holds more than [`MAX_ENTRIES`] values.
    pub fn check_bounds(&self) -> Result<()> {
        self.walk(&automerge::ROOT, 0)?;
        // The collections of the layout stay maps: a peer replacing the notes map with a string
        // would hide every note from every reader.
        for key in MAP_KEYS {
            let values = self
                .doc
                .get_all(&automerge::ROOT, key)
                .map_err(|_| refuse("malformed case document"))?;
            if values
                .iter()
                .any(|(value, _)| !matches!(value, Value::Object(ObjType::Map)))
            {
                return Err(refuse("the changes break the case document's layout"));
            }
        }
        self.case()
            .map(|_| ())
            .map_err(|_| refuse("the changes break the case document's layout"))
    }

    fn walk(&self, obj: &ObjId, depth: usize) -> Result<()> {
        let doc = &self.doc;
        let ty = doc
            .object_type(obj)
            .map_err(|_| refuse("malformed case document"))?;
        let len = doc.length(obj);
        if len > MAX_ENTRIES && ty != ObjType::Text {
            return Err(refuse("a map or list in the changes is too large"));
        }
        match ty {
            ObjType::Text => {
                if len > MAX_TEXT_BYTES {
                    return Err(refuse("a text in the changes is too long"));
                }
                Ok(())
            }
            ObjType::Map | ObjType::Table => {
                for key in doc.keys(obj) {
                    if key.len() > MAX_TEXT_BYTES {
                        return Err(refuse("a key in the changes is too long"));
                    }
                    let values = doc
                        .get_all(obj, key.as_str())
                        .map_err(|_| refuse("malformed case document"))?;
                    for (value, id) in values {
                        self.check_value(&value, &id, depth)?;
                    }
                }
                Ok(())
            }
            ObjType::List => {
                for index in 0..len {
                    let values = doc
                        .get_all(obj, index)
                        .map_err(|_| refuse("malformed case document"))?;
                    for (value, id) in values {
                        self.check_value(&value, &id, depth)?;
                    }
                }
                Ok(())
            }
        }
    }

    fn check_value(&self, value: &Value<'_>, id: &ObjId, depth: usize) -> Result<()> {
        match value {
            Value::Object(_) => {
                if depth + 1 > MAX_DEPTH {
                    return Err(refuse("objects in the changes nest too deep"));
                }
                self.walk(id, depth + 1)
            }
            Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Str(text) if text.len() > MAX_TEXT_BYTES => {
                    Err(refuse("a string in the changes is too long"))
                }
                ScalarValue::Bytes(bytes) | ScalarValue::Unknown { bytes, .. }
                    if bytes.len() > MAX_TEXT_BYTES =>
                {
                    Err(refuse("a value in the changes is too long"))
                }
                _ => Ok(()),
            },
        }
    }
}
