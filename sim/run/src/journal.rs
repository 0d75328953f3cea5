//! The journal of a sweep, `journal.bin` in its results folder: each successful run's row is
//! appended and fsynced as soon as the run finishes, so a sweep stopped by SIGINT, SIGKILL or a power
//! loss keeps its finished runs and `--resume` continues from them. The journal is removed once the
//! results folder has been written whole.
//!
//! Format: a sequence of frames `[payload length: u64 LE][first 8 bytes of SHA-256(payload)][payload]`.
//! The first payload is [`MAGIC`] followed by the plan fingerprint; each later one is a bincode
//! [`Entry`]. A frame cut short by a kill, or one whose checksum does not match, ends the journal:
//! it and everything after it are dropped when the journal is reopened.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use sim::experiment::{RunOutput, SeriesPoint};

use crate::runner::RunRecord;
use crate::scenario::Plan;

/// File name of the journal inside a results folder.
pub const JOURNAL: &str = "journal.bin";

/// First bytes of the journal's header payload (format version 1).
const MAGIC: &[u8; 8] = b"SYSIMJ01";

/// Bytes before each payload: its length and its checksum.
const FRAME_HEAD: usize = 16;

/// One finished run as journaled: its identity and its output, floats bit for bit.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    run: u64,
    seed: u64,
    replication: u32,
    metrics: Vec<(String, f64)>,
    /// `(t_s, component, metric, value)` per sample.
    series: Vec<(f64, String, String, f64)>,
}

/// Why a journal cannot be continued.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The journal belongs to another plan.
    #[error("{}: journal of a different scenario or parameters (fingerprint {theirs}, this plan is {ours}); resume into another --out, or run without --resume to start over", path.display())]
    OtherPlan {
        /// The journal file.
        path: PathBuf,
        /// Fingerprint recorded in the journal.
        theirs: String,
        /// Fingerprint of this plan.
        ours: String,
    },
    /// A record that passed its checksum does not decode, or names a run that is not this plan's.
    #[error("{}: record {record} {reason}", path.display())]
    BadRecord {
        /// The journal file.
        path: PathBuf,
        /// Position of the record (0 is the header).
        record: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing the journal failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The journal file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
}

/// An open journal, shared by the runner's threads.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    /// Starts an empty journal for the plan with fingerprint `plan_key` in `dir`, replacing any
    /// earlier one.
    pub fn create(dir: &Path, plan_key: &str) -> Result<Self, JournalError> {
        let path = dir.join(JOURNAL);
        let io = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        let mut file = File::create(&path).map_err(io)?;
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(plan_key.as_bytes());
        file.write_all(&frame(&header)).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(Self {
            path,
            file: Mutex::new(file),
        })
    }

    /// Reopens the journal in `dir` for `plan` and returns it with the finished runs it holds (in
    /// the order they finished). A missing journal, or one whose header was torn, starts empty; a
    /// torn tail is cut off.
    pub fn reopen(dir: &Path, plan: &Plan) -> Result<(Self, Vec<RunRecord>), JournalError> {
        let path = dir.join(JOURNAL);
        let ours = crate::resume::plan_key(plan);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(JournalError::Io { path, source }),
        };
        let (payloads, valid_len) = frames(&bytes);
        let Some(theirs) = payloads.first().and_then(|h| h.strip_prefix(MAGIC)) else {
            return Ok((Self::create(dir, &ours)?, Vec::new()));
        };
        let theirs = String::from_utf8_lossy(theirs).into_owned();
        if theirs != ours {
            return Err(JournalError::OtherPlan { path, theirs, ours });
        }
        let mut records = Vec::new();
        for (record, payload) in payloads.iter().enumerate().skip(1) {
            let bad = |reason: String| JournalError::BadRecord {
                path: path.clone(),
                record,
                reason,
            };
            let (entry, _): (Entry, usize) =
                bincode::serde::decode_from_slice(payload, bincode::config::standard())
                    .map_err(|e| bad(format!("does not decode: {e}")))?;
            let spec = usize::try_from(entry.run)
                .ok()
                .and_then(|i| plan.runs.get(i))
                .filter(|s| s.ctx.seed == entry.seed && s.ctx.replication == entry.replication)
                .ok_or_else(|| bad(format!("names run {}, which is not this plan's", entry.run)))?;
            records.push(RunRecord {
                spec: spec.clone(),
                outcome: Ok(entry.into_output()),
            });
        }
        let io = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new().append(true).open(&path).map_err(io)?;
        file.set_len(valid_len as u64).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok((
            Self {
                path,
                file: Mutex::new(file),
            },
            records,
        ))
    }

    /// Appends a successful run (failed runs are run again on resume, so they are not journaled)
    /// and waits until it is on disk.
    pub fn append(&self, record: &RunRecord) -> io::Result<()> {
        let Ok(out) = &record.outcome else {
            return Ok(());
        };
        let entry = Entry {
            run: record.spec.ctx.run,
            seed: record.spec.ctx.seed,
            replication: record.spec.ctx.replication,
            metrics: out.metrics.clone(),
            series: out
                .series
                .iter()
                .map(|p| (p.t_s, p.component.clone(), p.metric.clone(), p.value))
                .collect(),
        };
        let payload = bincode::serde::encode_to_vec(&entry, bincode::config::standard())
            .map_err(io::Error::other)?;
        let mut file = self
            .file
            .lock()
            .map_err(|_| io::Error::other("journal lock poisoned"))?;
        file.write_all(&frame(&payload))?;
        file.sync_data()
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes the journal (its runs are now in the results folder).
    pub fn remove(self) -> io::Result<()> {
        drop(self.file);
        fs::remove_file(&self.path)
    }
}

impl Entry {
    fn into_output(self) -> RunOutput {
        RunOutput {
            metrics: self.metrics,
            series: self
                .series
                .into_iter()
                .map(|(t_s, component, metric, value)| SeriesPoint {
                    t_s,
                    component,
                    metric,
                    value,
                })
                .collect(),
            // Journaled runs keep no timeline: `--resume` writes none for them (see `--trace`).
            ..RunOutput::default()
        }
    }
}

/// `payload` framed with its length and checksum.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(FRAME_HEAD + payload.len());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&checksum(payload));
    bytes.extend_from_slice(payload);
    bytes
}

fn checksum(payload: &[u8]) -> [u8; 8] {
    let digest = Sha256::digest(payload);
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    head
}

/// The payloads of the whole frames at the start of `bytes`, and the length they span; reading
/// stops at the first frame that is cut short or fails its checksum.
fn frames(bytes: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut payloads = Vec::new();
    let mut at = 0;
    while let Some(rest) = bytes.get(at..) {
        let Some((len, rest)) = rest.split_first_chunk::<8>() else {
            break;
        };
        let Some((sum, rest)) = rest.split_first_chunk::<8>() else {
            break;
        };
        let Some(payload) = usize::try_from(u64::from_le_bytes(*len))
            .ok()
            .and_then(|n| rest.get(..n))
        else {
            break;
        };
        if checksum(payload) != *sum {
            break;
        }
        payloads.push(payload);
        at += FRAME_HEAD + payload.len();
    }
    (payloads, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_stop_at_a_torn_or_corrupt_frame() {
        let mut bytes = frame(b"header");
        bytes.extend(frame(b"one"));
        let whole = bytes.len();
        bytes.extend(frame(b"two"));
        assert_eq!(frames(&bytes).0, vec![&b"header"[..], b"one", b"two"]);
        let torn = &bytes[..bytes.len() - 1];
        assert_eq!(frames(torn), (vec![&b"header"[..], b"one"], whole));
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(frames(&flipped).1, whole);
        assert_eq!(frames(b"").1, 0);
    }
}
