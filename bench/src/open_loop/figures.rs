//! An open-loop run in figures: per phase the rate offered, sent and answered `success`; latency
//! from the intended send time, of successes and of every other reply; transport errors; how
//! late the generator sent; and a per-second timeline, to see throughput come back when an
//! overload stops.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::schedule::Schedule;
use super::stalls::{slowest_by_second, DiskStalls};
use super::timeline::{timeline, Second};
use super::{Outcome, Reply};
use crate::disk::Sync;
use crate::load::{new_histogram, LoadResult};

#[derive(Debug, Serialize)]
pub struct OpenLoop {
    pub phases: Vec<PhaseFigures>,
    /// Requests sent per second, first intended send to last actual send.
    pub sent_per_second: f64,
    /// Replies `success` per second, from the start to the last reply.
    pub goodput_per_second: f64,
    /// Latency of `success` replies, from each request's intended send time.
    pub success_latency_ms: Percentiles,
    /// Replies other than `200 success`, by `status body`, with their own latency.
    pub non_success: Vec<ReplyFigures>,
    /// No reply at all (transport errors, timeouts), by kind, with the time to give up.
    pub errors: Vec<ReplyFigures>,
    /// Actual send (a connection in hand) minus intended send: queueing in the generator,
    /// whether for a free connection or for the generator itself.
    pub send_delay_ms: Spread,
    /// The generator's own lag: when it got round to a request minus its intended time. Above a
    /// millisecond or two, the generator fell behind and the offered rate was not offered.
    pub dispatch_delay_ms: Spread,
    /// Second by second: `sent` by when requests went out, the rest by when their reply ended.
    pub timeline: Vec<Second>,
    /// With `--disk-probe`: the disk's stalls during the run, set beside the slow requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_probe: Option<DiskStalls>,
}

#[derive(Debug, Serialize)]
pub struct PhaseFigures {
    pub offered_per_second: f64,
    pub seconds: f64,
    pub requests: usize,
    /// The phase's requests sent per second: over the phase, or until its last one went out.
    pub sent_per_second: f64,
    /// `success` replies that ended within the phase's time, per second.
    pub goodput_per_second: f64,
}

#[derive(Debug, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

#[derive(Debug, Serialize)]
pub struct Spread {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Serialize)]
pub struct ReplyFigures {
    pub reply: String,
    pub count: usize,
    pub latency_ms: Spread,
}

impl OpenLoop {
    pub fn new(schedule: &Schedule, outcomes: &[Outcome]) -> Self {
        let last_sent = outcomes.iter().filter_map(|o| o.sent).max();
        let last_done = outcomes.iter().map(|o| o.done).max();
        let sent = outcomes.iter().filter(|o| o.sent.is_some()).count();
        let successes: Vec<Duration> = outcomes
            .iter()
            .filter(|o| o.reply == Reply::Success)
            .map(Outcome::latency)
            .collect();
        let delays = |of: fn(&Outcome) -> Option<Duration>| {
            Spread::of(
                outcomes
                    .iter()
                    .filter_map(|o| Some(of(o)?.saturating_sub(o.intended))),
            )
        };
        Self {
            phases: phases(schedule, outcomes),
            sent_per_second: per_second(sent, last_sent),
            goodput_per_second: per_second(successes.len(), last_done),
            success_latency_ms: Percentiles::of(successes),
            non_success: by_reply(outcomes, |r| match r {
                Reply::Other(what) => Some(what),
                _ => None,
            }),
            errors: by_reply(outcomes, |r| match r {
                Reply::Error(kind) => Some(kind),
                _ => None,
            }),
            send_delay_ms: delays(|o| o.sent),
            dispatch_delay_ms: delays(|o| Some(o.dispatched)),
            timeline: timeline(outcomes),
            disk_probe: None,
        }
    }

    /// Adds what a disk probe in `dir` saw during the run (`syncs` timed like `outcomes`).
    pub fn with_disk_probe(mut self, dir: String, syncs: &[Sync], outcomes: &[Outcome]) -> Self {
        let slowest = slowest_by_second(syncs, self.timeline.len());
        for (second, slowest) in self.timeline.iter_mut().zip(slowest) {
            second.disk_sync_max_ms = slowest;
        }
        self.disk_probe = Some(DiskStalls::new(dir, syncs, outcomes));
        self
    }

    /// The report's lines for people.
    pub fn lines(&self) -> Vec<String> {
        let row = |name: &str, value: String| format!("  {name:<24} {value}");
        let mut out = Vec::new();
        for (i, p) in self.phases.iter().enumerate() {
            out.push(row(
                &format!("phase {}", i + 1),
                format!(
                    "offered {:.0}/s for {} s ({} requests): sent {:.0}/s, goodput {:.0}/s",
                    p.offered_per_second,
                    p.seconds,
                    p.requests,
                    p.sent_per_second,
                    p.goodput_per_second
                ),
            ));
        }
        out.push(row(
            "sent",
            format!("{:.0} requests/s", self.sent_per_second),
        ));
        out.push(row(
            "goodput",
            format!(
                "{:.0} success/s (start to last reply)",
                self.goodput_per_second
            ),
        ));
        let l = &self.success_latency_ms;
        out.push(row(
            "success latency",
            format!(
                "p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2} ms (from intended send)",
                l.p50, l.p90, l.p99, l.p99_9, l.max
            ),
        ));
        for (title, replies) in [("non-success", &self.non_success), ("errors", &self.errors)] {
            let total: usize = replies.iter().map(|r| r.count).sum();
            out.push(row(title, total.to_string()));
            for r in replies {
                out.push(format!(
                    "    {:>8}  {:<40} p50 {:.1}  p99 {:.1}  max {:.1} ms",
                    r.count, r.reply, r.latency_ms.p50, r.latency_ms.p99, r.latency_ms.max
                ));
            }
        }
        for (name, d) in [
            ("send delay", &self.send_delay_ms),
            ("generator lag", &self.dispatch_delay_ms),
        ] {
            out.push(row(
                name,
                format!("p50 {:.2}  p99 {:.2}  max {:.2} ms", d.p50, d.p99, d.max),
            ));
        }
        if let Some(disk) = &self.disk_probe {
            out.extend(disk.lines());
        }
        out.push("  per second (sent by send time; replies by the time they ended):".into());
        let probed = self.disk_probe.is_some();
        out.push(format!(
            "    {:>4} {:>7} {:>7} {:>7} {:>6} {:>6} {:>9} {:>9}{}",
            "s",
            "sent",
            "success",
            "503",
            "other",
            "errors",
            "p50 ms",
            "p99 ms",
            if probed { "  slowest sync ms" } else { "" }
        ));
        let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
        // A stretch of silent seconds (a stalled service) is one line, not one per second.
        for quiet in self.timeline.chunk_by(|a, b| a.is_quiet() && b.is_quiet()) {
            let (first, last) = (&quiet[0], &quiet[quiet.len() - 1]);
            if quiet.len() > 1 {
                out.push(format!(
                    "    {:>4} to {}: nothing sent, nothing answered",
                    first.second, last.second
                ));
                continue;
            }
            let sync = match probed {
                true => format!(" {:>16}", ms(first.disk_sync_max_ms)),
                false => String::new(),
            };
            out.push(format!(
                "    {:>4} {:>7} {:>7} {:>7} {:>6} {:>6} {:>9} {:>9}{sync}",
                first.second,
                first.sent,
                first.success,
                first.status_503,
                first.other_non_success,
                first.errors,
                ms(first.success_p50_ms),
                ms(first.success_p99_ms)
            ));
        }
        out
    }
}

/// The run as the closed loop's figures: every reply's latency (from its intended time), the
/// success count, and the rest by `status body` or `transport: kind`.
pub fn summary(outcomes: &[Outcome]) -> LoadResult {
    let mut result = LoadResult {
        latency: new_histogram(),
        elapsed: outcomes.iter().map(|o| o.done).max().unwrap_or_default(),
        success: 0,
        failures: BTreeMap::new(),
    };
    for outcome in outcomes {
        let micros = u64::try_from(outcome.latency().as_micros()).unwrap_or(u64::MAX);
        result.latency.saturating_record(micros.max(1));
        let key = match &outcome.reply {
            Reply::Success => {
                result.success += 1;
                continue;
            }
            Reply::Other(what) => what.clone(),
            Reply::Error(kind) => format!("transport: {kind}"),
        };
        *result.failures.entry(key).or_default() += 1;
    }
    result
}

fn phases(schedule: &Schedule, outcomes: &[Outcome]) -> Vec<PhaseFigures> {
    let mut first = 0;
    let mut figures = Vec::new();
    for (index, phase) in schedule.phases().iter().enumerate() {
        let mine =
            &outcomes[first.min(outcomes.len())..(first + phase.requests()).min(outcomes.len())];
        first += phase.requests();
        let start = schedule.phase_start(index);
        let end = start + phase.seconds;
        let last_sent = mine.iter().filter_map(|o| o.sent).max();
        let span = last_sent
            .map_or(0.0, |t| t.as_secs_f64() - start)
            .max(phase.seconds);
        let ended_within = |o: &&Outcome| (start..end).contains(&o.done.as_secs_f64());
        let goodput = outcomes
            .iter()
            .filter(ended_within)
            .filter(|o| o.reply == Reply::Success)
            .count();
        figures.push(PhaseFigures {
            offered_per_second: phase.rate,
            seconds: phase.seconds,
            requests: phase.requests(),
            sent_per_second: mine.iter().filter(|o| o.sent.is_some()).count() as f64 / span,
            goodput_per_second: goodput as f64 / phase.seconds,
        });
    }
    figures
}

fn by_reply(outcomes: &[Outcome], pick: fn(&Reply) -> Option<&String>) -> Vec<ReplyFigures> {
    let mut groups: BTreeMap<&String, Vec<Duration>> = BTreeMap::new();
    for outcome in outcomes {
        if let Some(what) = pick(&outcome.reply) {
            groups.entry(what).or_default().push(outcome.latency());
        }
    }
    groups
        .into_iter()
        .map(|(reply, latencies)| ReplyFigures {
            reply: reply.clone(),
            count: latencies.len(),
            latency_ms: Spread::of(latencies),
        })
        .collect()
}

impl Percentiles {
    fn of(mut latencies: Vec<Duration>) -> Self {
        latencies.sort_unstable();
        let at = |q| quantile(&latencies, q).map_or(0.0, ms);
        Self {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p99_9: at(0.999),
            max: at(1.0),
        }
    }
}

impl Spread {
    pub(super) fn of(latencies: impl IntoIterator<Item = Duration>) -> Self {
        let mut sorted: Vec<Duration> = latencies.into_iter().collect();
        sorted.sort_unstable();
        let at = |q| quantile(&sorted, q).map_or(0.0, ms);
        Self {
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// The nearest-rank quantile of sorted values.
pub(super) fn quantile(sorted: &[Duration], q: f64) -> Option<Duration> {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied()
}

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn per_second(count: usize, over: Option<Duration>) -> f64 {
    share(count as f64, over.map_or(0.0, |d| d.as_secs_f64()))
}

/// `part / whole`, or 0 when there is no whole (nothing sent, no time elapsed).
pub(super) fn share(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        part / whole
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::super::schedule::Phase;
    use super::*;

    fn outcome(intended_ms: u64, done_ms: u64, reply: Reply) -> Outcome {
        let ms = Duration::from_millis;
        Outcome {
            intended: ms(intended_ms),
            dispatched: ms(intended_ms),
            sent: Some(ms(intended_ms + 1)),
            done: ms(done_ms),
            reply,
        }
    }

    #[test]
    fn replies_are_counted_in_the_second_they_end_by_kind() {
        let schedule = Schedule::new(vec![
            Phase::new(2.0, 1.0).unwrap(),
            Phase::new(2.0, 1.0).unwrap(),
        ]);
        let outcomes = [
            outcome(0, 10, Reply::Success),
            outcome(500, 1_700, Reply::Other("503 fail".into())),
            outcome(1_000, 1_004, Reply::Success),
            outcome(
                1_500,
                1_600,
                Reply::Error("exchange: connection reset".into()),
            ),
        ];

        let figures = OpenLoop::new(&schedule, &outcomes);

        let row = |s: usize| {
            let r = &figures.timeline[s];
            (r.sent, r.success, r.status_503, r.errors)
        };
        assert_eq!(figures.timeline.len(), 2);
        assert_eq!(row(0), (2, 1, 0, 0));
        assert_eq!(row(1), (2, 1, 1, 1));
        assert_eq!(figures.timeline[1].success_p50_ms, Some(4.0));
        assert_eq!(figures.phases[0].goodput_per_second, 1.0);
        assert_eq!(figures.non_success[0].reply, "503 fail");
        assert_eq!(figures.non_success[0].latency_ms.max, 1_200.0);
        assert_eq!(figures.send_delay_ms.max, 1.0);
        let summary = summary(&outcomes);
        assert_eq!((summary.success, summary.requests()), (2, 4));
        assert!(summary
            .failures
            .contains_key("transport: exchange: connection reset"));
    }

    #[test]
    fn silent_seconds_are_one_line_of_the_table() {
        let schedule = Schedule::new(vec![Phase::new(1.0, 2.0).unwrap()]);
        let outcomes = [
            outcome(0, 10, Reply::Success),
            outcome(1_000, 5_500, Reply::Success),
        ];

        let lines = OpenLoop::new(&schedule, &outcomes).lines();

        assert!(lines
            .iter()
            .any(|l| l.trim() == "2 to 4: nothing sent, nothing answered"));
        let last = lines.last().unwrap().split_whitespace().collect::<Vec<_>>();
        assert_eq!(last[..3], ["5", "0", "1"], "{lines:#?}");
    }
}
