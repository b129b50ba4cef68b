//! `IndexType = "memory"`: the records of this process, lost at exit.

use std::collections::HashSet;
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{IndexError, IndexLine, Indexer};

/// Records in the order they were made.
#[derive(Default)]
pub struct MemoryIndex {
    inner: Mutex<Records>,
}

#[derive(Default)]
struct Records {
    /// Oldest first; timestamps never decrease (see [`MemoryIndex::index`]).
    lines: Vec<IndexLine>,
    recorded: HashSet<(String, String)>,
}

impl MemoryIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Indexer for MemoryIndex {
    async fn index(&self, module: &str, version: &str) -> Result<(), IndexError> {
        let mut records = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !records
            .recorded
            .insert((module.to_string(), version.to_string()))
        {
            return Err(IndexError::AlreadyIndexed {
                module: module.to_string(),
                version: version.to_string(),
            });
        }
        // A clock stepped back must not put a newer record before an
        // older one: a reader paging with `since` would skip it.
        let now = OffsetDateTime::now_utc();
        let timestamp = records
            .lines
            .last()
            .map_or(now, |last| last.timestamp.max(now));
        records.lines.push(IndexLine {
            path: module.to_string(),
            version: version.to_string(),
            timestamp,
        });
        Ok(())
    }

    async fn lines(&self, since: OffsetDateTime, limit: u64) -> Result<Vec<IndexLine>, IndexError> {
        let records = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let first = records.lines.partition_point(|l| l.timestamp < since);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(records.lines[first..].iter().take(limit).cloned().collect())
    }
}
