//! The failure entries of one import: one per location, in the order the locations first failed,
//! each with its latest status.

use std::collections::HashMap;

use traillake_api::shapes::ImportFailureStatus;

use super::record::ImportFailure;

/// The failure entries of an import.
#[derive(Debug, Clone, Default)]
pub struct Failures {
    entries: Vec<ImportFailure>,
    index: HashMap<String, usize>,
}

impl Failures {
    /// Returns the entries, as [`super::record::load_failures`] returned them.
    pub fn new(entries: Vec<ImportFailure>) -> Self {
        let index = entries
            .iter()
            .enumerate()
            .map(|(at, failure)| (failure.location.clone(), at))
            .collect();
        Self { entries, index }
    }

    /// Adds an entry, or replaces the entry of the same location.
    pub fn upsert(&mut self, failure: ImportFailure) {
        match self.index.get(&failure.location) {
            Some(&at) => self.entries[at] = failure,
            None => {
                self.index.insert(failure.location.clone(), self.entries.len());
                self.entries.push(failure);
            }
        }
    }

    /// Returns the entry of a location, if it has one.
    pub fn get(&self, location: &str) -> Option<&ImportFailure> {
        self.index.get(location).map(|&at| &self.entries[at])
    }

    /// Returns the entries in order.
    pub fn entries(&self) -> &[ImportFailure] {
        &self.entries
    }

    /// Returns the entries of locations not copied yet (FAILED, or RETRY while a retry runs).
    pub fn open(&self) -> impl Iterator<Item = &ImportFailure> {
        self.entries
            .iter()
            .filter(|failure| failure.status != ImportFailureStatus::Succeeded)
    }
}
