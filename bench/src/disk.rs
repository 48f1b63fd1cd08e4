//! How long the disk under a database takes to make a write durable. SQLite commits with one
//! fsync each (WAL, `synchronous=FULL`) on one writer, so its median bounds SQLite's
//! notifications per second; Postgres flushes its WAL at each commit, so a stall of the disk is a
//! stall of every commit waiting on it. [`Probe`] times the disk through a whole run.

use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The median time of `rounds` 4 KiB write + fsync pairs on a scratch file in `dir`, in ms.
pub fn fsync_median_ms(dir: &Path, rounds: usize) -> Option<f64> {
    let mut file = tempfile::tempfile_in(dir).ok()?;
    let page = [0u8; 4096];
    let mut times: Vec<f64> = (0..rounds.max(1))
        .map(|_| {
            let started = Instant::now();
            file.write_all(&page).and_then(|()| file.sync_all()).ok()?;
            Some(started.elapsed().as_secs_f64() * 1000.0)
        })
        .collect::<Option<_>>()?;
    times.sort_by(f64::total_cmp);
    Some(times[times.len() / 2])
}

/// One write + fdatasync of a [`Probe`]: when it began, from the start of the load, and how
/// long it took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sync {
    pub at: Duration,
    pub took: Duration,
}

impl Sync {
    pub fn end(&self) -> Duration {
        self.at + self.took
    }
}

/// A thread that makes a 4 KiB write durable (`fdatasync`, as Postgres's WAL and SQLite do)
/// every `EVERY` on a scratch file beside the database, while the load runs: the disk's own
/// stalls, timed apart from the service, to set beside the requests that were slow.
pub struct Probe {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<io::Result<Vec<(Instant, Duration)>>>,
}

/// Often enough to catch a stall of a few milliseconds, seldom enough (100 small writes a
/// second) not to be one.
const EVERY: Duration = Duration::from_millis(10);
/// The probe rewrites this much of its file in a circle: after the first pass no write grows
/// the file, so each sync flushes data only, like a preallocated WAL segment.
const SPAN: u64 = 1 << 20;

impl Probe {
    pub fn start(dir: &Path) -> io::Result<Self> {
        let mut file = tempfile::tempfile_in(dir)?;
        file.write_all(&vec![0u8; SPAN as usize])?;
        file.sync_all()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("disk-probe".into())
            .spawn(move || {
                let page = [0x5au8; 4096];
                let mut syncs = Vec::new();
                let mut offset = 0;
                while !stopped.load(Ordering::Relaxed) {
                    file.write_all_at(&page, offset)?;
                    offset = (offset + page.len() as u64) % SPAN;
                    let began = Instant::now();
                    file.sync_data()?;
                    syncs.push((began, began.elapsed()));
                    std::thread::sleep(EVERY);
                }
                Ok(syncs)
            })?;
        Ok(Self { stop, thread })
    }

    /// Stops the thread; its syncs, timed from `start` (those begun before it are left out).
    pub fn finish(self, start: Instant) -> io::Result<Vec<Sync>> {
        self.stop.store(true, Ordering::Relaxed);
        let syncs = self
            .thread
            .join()
            .map_err(|_| io::Error::other("the disk probe panicked"))??;
        Ok(syncs
            .into_iter()
            .filter_map(|(began, took)| {
                Some(Sync {
                    at: began.checked_duration_since(start)?,
                    took,
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_times_its_syncs_one_after_another() {
        let dir = tempfile::tempdir().unwrap();
        let probe = Probe::start(dir.path()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let start = Instant::now();
        std::thread::sleep(EVERY * 6);

        let syncs = probe.finish(start).unwrap();

        assert!(syncs.len() >= 2, "{syncs:?}");
        assert!(syncs.windows(2).all(|w| w[0].end() <= w[1].at), "{syncs:?}");
        assert!(syncs.iter().all(|s| !s.took.is_zero()));
    }
}
