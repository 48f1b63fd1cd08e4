//! How long the disk under a SQLite file takes to make a write durable. SQLite commits with one
//! fsync each (WAL, `synchronous=FULL`) on one writer, so this bounds its notifications per second.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

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
