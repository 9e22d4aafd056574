//! Serializing a profile's field groups into memory that is wiped on drop, as they are sealed.

use std::io;

use serde::Serialize;
use zeroize::Zeroizing;

use super::*;
use crate::error::{Error, Result};
use crate::vocabulary::FieldGroup;

impl Profile {
    /// Serializes one field group to JSON, in memory that is wiped on drop.
    pub fn group_json(&self, group: FieldGroup) -> Result<Zeroizing<Vec<u8>>> {
        match group {
            FieldGroup::Identity => to_zeroizing_json(&self.identity),
            FieldGroup::Contact => to_zeroizing_json(&self.contact),
            FieldGroup::Professional => to_zeroizing_json(&self.professional),
            FieldGroup::Special => to_zeroizing_json(&self.special),
            FieldGroup::Control => to_zeroizing_json(&self.control),
        }
    }

    /// Every group's JSON ([`Profile::group_json`]), serialized one after the other into one
    /// buffer. `document_len` is the length of the document the profile was parsed from (0 if
    /// none): the buffer is sized for it and never grows for a cvvault document (see
    /// [`Profile::validate_parsed`] for the bound); otherwise it grows, wiping what it leaves.
    pub fn group_texts(&self, document_len: usize) -> Result<GroupTexts> {
        let capacity = document_len
            .saturating_add(GroupTexts::SLACK)
            .clamp(GROUP_BUFFER, MAX_PROFILE_BYTES + GroupTexts::SLACK);
        let mut out = ZeroizingWriter(Zeroizing::new(Vec::with_capacity(capacity)));
        let mut ends = [0usize; FieldGroup::ALL.len()];
        for (end, group) in ends.iter_mut().zip(FieldGroup::ALL) {
            match group {
                FieldGroup::Identity => write_json(&mut out, &self.identity),
                FieldGroup::Contact => write_json(&mut out, &self.contact),
                FieldGroup::Professional => write_json(&mut out, &self.professional),
                FieldGroup::Special => write_json(&mut out, &self.special),
                FieldGroup::Control => write_json(&mut out, &self.control),
            }?;
            *end = out.0.len();
        }
        Ok(GroupTexts {
            buffer: out.0,
            ends,
        })
    }

    /// Serializes only the given groups, as `{"identity": {...}, "contact": {...}}` in the
    /// order given (an extract), in memory that is wiped on drop. A group listed twice is
    /// written once.
    pub fn to_json_groups(&self, groups: &[FieldGroup]) -> Result<Zeroizing<Vec<u8>>> {
        let mut parts: Vec<(FieldGroup, Zeroizing<Vec<u8>>)> = Vec::with_capacity(groups.len());
        for &group in groups {
            if parts.iter().all(|(seen, _)| *seen != group) {
                parts.push((group, self.group_json(group)?));
            }
        }
        // `{`, `}`, commas between groups and per group `"name":`; sized up front so the buffer holding
        // plaintext is never reallocated (a reallocation would leave an unwiped copy behind).
        let total = parts
            .iter()
            .fold(1 + parts.len().max(1), |sum, (group, json)| {
                sum + group.as_str().len() + 3 + json.len()
            });
        let mut out = Zeroizing::new(Vec::with_capacity(total));
        out.push(b'{');
        for (index, (group, json)) in parts.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(group.as_str().as_bytes());
            out.extend_from_slice(b"\":");
            out.extend_from_slice(json);
        }
        out.push(b'}');
        Ok(out)
    }
}

/// Counts bytes written, to size buffers and check limits without holding a copy.
pub(super) struct ByteCount(usize);

impl io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(super) fn serialized_len<T: Serialize>(value: &T) -> Result<usize> {
    let mut count = ByteCount(0);
    serde_json::to_writer(&mut count, value).map_err(|_| Error::Corrupt {
        what: "a profile group could not be serialized",
    })?;
    Ok(count.0)
}

/// A growing buffer for plaintext that wipes every allocation it leaves behind: it grows by
/// copying into a new buffer twice the size and wiping the old one, where `Vec`'s own
/// growth would free the old allocation unwiped.
pub(super) struct ZeroizingWriter(Zeroizing<Vec<u8>>);

impl ZeroizingWriter {
    #[cold]
    pub(super) fn grow(&mut self, needed: usize) {
        let capacity = needed.max(self.0.capacity().saturating_mul(2));
        let mut grown = Zeroizing::new(Vec::with_capacity(capacity));
        grown.extend_from_slice(&self.0);
        // The old buffer is wiped as it drops.
        self.0 = grown;
    }
}

impl io::Write for ZeroizingWriter {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let needed = self.0.len().saturating_add(buf.len());
        if needed > self.0.capacity() {
            self.grow(needed);
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// First allocation for a serialized group; most fit, the largest grow once or twice.
pub(super) const GROUP_BUFFER: usize = 1024;

/// Serializes into memory that is wiped on drop, in one pass, with no unwiped copy left by
/// reallocation.
pub(super) fn to_zeroizing_json<T: Serialize>(value: &T) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = ZeroizingWriter(Zeroizing::new(Vec::with_capacity(GROUP_BUFFER)));
    write_json(&mut out, value)?;
    Ok(out.0)
}

pub(super) fn write_json<T: Serialize>(out: &mut ZeroizingWriter, value: &T) -> Result<()> {
    serde_json::to_writer(out, value).map_err(|_| Error::Corrupt {
        what: "a profile group could not be serialized",
    })
}

/// Every field group's JSON text, one after the other in one buffer that is wiped on drop
/// ([`Profile::group_texts`]).
pub struct GroupTexts {
    pub(super) buffer: Zeroizing<Vec<u8>>,
    /// Where each group's text ends, in [`FieldGroup::ALL`] order.
    pub(super) ends: [usize; FieldGroup::ALL.len()],
}

impl GroupTexts {
    /// What the groups' texts may add to the length of the document they were parsed from:
    /// at most the serialized length of an empty profile, which is below this (tested).
    pub(super) const SLACK: usize = 256;

    /// Each group's JSON text, in [`FieldGroup::ALL`] order.
    pub fn all(&self) -> [&[u8]; FieldGroup::ALL.len()] {
        let mut start = 0;
        self.ends.map(|end| {
            // INVARIANT: the ends were recorded in order while writing `buffer`.
            let text = self.buffer.get(start..end).unwrap_or_default();
            start = end;
            text
        })
    }
}
