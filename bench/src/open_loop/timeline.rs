//! The open loop second by second: requests sent by when they went out, replies by when they
//! ended, and the latency of that second's successes, to see throughput fall under overload and
//! come back the second it stops.

use std::time::Duration;

use serde::Serialize;

use super::figures::{ms, quantile};
use super::{Outcome, Reply};

#[derive(Debug, Serialize)]
pub struct Second {
    pub second: u64,
    pub sent: usize,
    pub success: usize,
    /// Replies `503` (load shed, or the service's own timeout).
    pub status_503: usize,
    pub other_non_success: usize,
    pub errors: usize,
    pub success_p50_ms: Option<f64>,
    pub success_p99_ms: Option<f64>,
    /// With `--disk-probe`: the longest sync the probe began in this second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_sync_max_ms: Option<f64>,
}

impl Second {
    /// Nothing went out and nothing came back.
    pub fn is_quiet(&self) -> bool {
        self.sent + self.success + self.status_503 + self.other_non_success + self.errors == 0
    }
}

pub fn timeline(outcomes: &[Outcome]) -> Vec<Second> {
    let last = outcomes.iter().map(|o| o.done.as_secs()).max().unwrap_or(0);
    let mut seconds: Vec<(Second, Vec<Duration>)> = (0..=last)
        .map(|second| {
            let row = Second {
                second,
                sent: 0,
                success: 0,
                status_503: 0,
                other_non_success: 0,
                errors: 0,
                success_p50_ms: None,
                success_p99_ms: None,
                disk_sync_max_ms: None,
            };
            (row, Vec::new())
        })
        .collect();
    for outcome in outcomes {
        if let Some(sent) = outcome.sent {
            seconds[sent.as_secs() as usize].0.sent += 1;
        }
        let (row, latencies) = &mut seconds[outcome.done.as_secs() as usize];
        match &outcome.reply {
            Reply::Success => {
                row.success += 1;
                latencies.push(outcome.latency());
            }
            Reply::Other(what) if what.starts_with("503 ") => row.status_503 += 1,
            Reply::Other(_) => row.other_non_success += 1,
            Reply::Error(_) => row.errors += 1,
        }
    }
    seconds
        .into_iter()
        .map(|(mut row, mut latencies)| {
            latencies.sort_unstable();
            row.success_p50_ms = quantile(&latencies, 0.50).map(ms);
            row.success_p99_ms = quantile(&latencies, 0.99).map(ms);
            row
        })
        .collect()
}
