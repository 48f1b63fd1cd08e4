//! Group commit for payment events. A commit is the expensive part of applying an event (an fsync
//! on SQLite, a WAL flush and a round trip on Postgres), so events that arrive while the writer
//! is busy are applied together in one transaction, in arrival order, and each caller is answered
//! only after that transaction has committed. A lone event waits for nothing: the writer takes
//! whatever is queued when it becomes free. If a batch fails, its events are retried one by one,
//! so one bad event cannot fail the others that happened to share its transaction.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, Mutex};

use super::model::{Outcome, PaymentEvent};
use super::repository::StoreError;

/// A store that can apply several events in one transaction.
#[async_trait]
pub(super) trait ApplyBatch: Send + Sync + 'static {
    /// Applies `events` in order as one transaction; an event sees the effect of the ones before
    /// it. Returns one outcome per event, or an error and nothing committed.
    async fn apply_batch(&self, events: &[PaymentEvent]) -> Result<Vec<Outcome>, StoreError>;
}

struct Job {
    event: PaymentEvent,
    reply: oneshot::Sender<Result<Outcome, StoreError>>,
}

/// The queue in front of the writer tasks.
pub(super) struct Batcher {
    queue: mpsc::Sender<Job>,
    in_flight: AtomicUsize,
}

impl Batcher {
    /// Starts `writers` tasks applying batches of at most `max_batch` events. They stop when the
    /// `Batcher` is dropped and the queue has drained.
    pub fn start<S: ApplyBatch>(store: Arc<S>, writers: usize, max_batch: usize) -> Self {
        let (queue, jobs) = mpsc::channel(max_batch * 4);
        let jobs = Arc::new(Mutex::new(jobs));
        for _ in 0..writers.max(1) {
            tokio::spawn(write(store.clone(), jobs.clone(), max_batch));
        }
        Self {
            queue,
            in_flight: AtomicUsize::new(0),
        }
    }

    pub async fn apply(&self, event: PaymentEvent) -> Result<Outcome, StoreError> {
        let _counted = InFlight::count(&self.in_flight);
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { event, reply })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Payment events queued or being applied now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// Counts a call to `apply` until it returns or is dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn count(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn write<S: ApplyBatch>(store: Arc<S>, jobs: Arc<Mutex<mpsc::Receiver<Job>>>, max: usize) {
    let mut batch = Vec::with_capacity(max);
    loop {
        // One writer collects while the others commit.
        if jobs.lock().await.recv_many(&mut batch, max).await == 0 {
            return;
        }
        // A caller that gave up (its HTTP request timed out) was not told `success`, so Alipay
        // resends: its event need not be applied now, when the writer is behind.
        let (events, replies): (Vec<_>, Vec<_>) = batch
            .drain(..)
            .filter(|job| !job.reply.is_closed())
            .map(|job| (job.event, job.reply))
            .unzip();
        if events.is_empty() {
            continue;
        }
        let mut replies = replies.into_iter();
        let failure = match store.apply_batch(&events).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.by_ref().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
                None
            }
            Err(error) if error.is_statement_error() && events.len() == 1 => {
                if let Some(reply) = replies.next() {
                    let _ = reply.send(Err(error));
                }
                None
            }
            Err(error) if error.is_statement_error() => {
                tracing::warn!(error = ?error, events = events.len(), "batch failed; applying its events one by one");
                one_by_one(store.as_ref(), &events, &mut replies).await
            }
            Err(error) => Some(error),
        };
        if let Some(error) = failure {
            fail_all(error, replies, &jobs);
        }
    }
}

/// Applies each event alone, so that a statement error fails only the event that caused it.
/// Stops at an error that is not about one event (the database is unreachable) and returns it.
async fn one_by_one<S: ApplyBatch>(
    store: &S,
    events: &[PaymentEvent],
    replies: &mut impl Iterator<Item = oneshot::Sender<Result<Outcome, StoreError>>>,
) -> Option<StoreError> {
    for (event, reply) in events.iter().zip(replies) {
        let result = store.apply_batch(std::slice::from_ref(event)).await;
        let result = match result {
            Err(error) if !error.is_statement_error() => {
                let error = Arc::new(error);
                let _ = reply.send(Err(StoreError::Shared(error.clone())));
                return Some(StoreError::Shared(error));
            }
            result => result.and_then(|outcomes| {
                outcomes
                    .into_iter()
                    .next()
                    .ok_or_else(|| StoreError::Corrupt("a batch of one gave no outcome".into()))
            }),
        };
        let _ = reply.send(result);
    }
    None
}

/// Fails `replies` and every job already queued: they would meet the same unreachable database,
/// one connect timeout after another, long after Alipay stopped waiting for an answer.
fn fail_all(
    error: StoreError,
    replies: impl Iterator<Item = oneshot::Sender<Result<Outcome, StoreError>>>,
    jobs: &Mutex<mpsc::Receiver<Job>>,
) {
    let error = Arc::new(error);
    let mut queued = Vec::new();
    // Locked only when no other writer is waiting for jobs; then the queue is empty anyway.
    if let Ok(mut jobs) = jobs.try_lock() {
        while let Ok(job) = jobs.try_recv() {
            queued.push(job.reply);
        }
    }
    tracing::warn!(error = ?error, queued = queued.len(), "batch failed; failing the events queued behind it");
    for reply in replies.chain(queued) {
        let _ = reply.send(Err(StoreError::Shared(error.clone())));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;
    use std::time::Duration;

    use time::OffsetDateTime;

    use super::*;
    use crate::alipay::notification::TradeStatus;
    use crate::money::Amount;
    use crate::orders::model::{AnomalyReason, Source, Verdict};

    /// Records the batches it is given; fails as `fail` says; the first batch waits for `gate`.
    struct Recorder {
        batches: StdMutex<Vec<Vec<String>>>,
        gate: tokio::sync::Semaphore,
        fail: fn(&[PaymentEvent]) -> Option<StoreError>,
    }

    #[async_trait]
    impl ApplyBatch for Recorder {
        async fn apply_batch(&self, events: &[PaymentEvent]) -> Result<Vec<Outcome>, StoreError> {
            let first = {
                let mut batches = self.batches.lock().unwrap();
                batches.push(events.iter().map(|e| e.out_trade_no.clone()).collect());
                batches.len() == 1
            };
            if first {
                let _ = self.gate.acquire().await.unwrap();
            }
            if let Some(error) = (self.fail)(events) {
                return Err(error);
            }
            Ok(events
                .iter()
                .map(|e| Outcome {
                    verdict: Verdict::Applied,
                    reason: Some(if e.out_trade_no.ends_with('0') {
                        AnomalyReason::AmountMismatch
                    } else {
                        AnomalyReason::UnknownOrder
                    }),
                    order: None,
                })
                .collect())
        }
    }

    fn event(no: usize) -> PaymentEvent {
        PaymentEvent {
            source: Source::Notify,
            notify_id: None,
            out_trade_no: format!("B{no}"),
            trade_no: None,
            trade_status: TradeStatus::TradeSuccess,
            total_amount: Amount::from_fen(1).unwrap(),
            buyer_id: None,
            paid_at: None,
            refund_fee: None,
            out_request_no: None,
            raw: Vec::new(),
            received_at: OffsetDateTime::now_utc(),
        }
    }

    /// Sends event 0, then events 1..n while the first batch is held at the gate, then opens it.
    async fn run(
        fail: fn(&[PaymentEvent]) -> Option<StoreError>,
        n: usize,
    ) -> (Vec<Result<Outcome, StoreError>>, Vec<Vec<String>>) {
        let recorder = Arc::new(Recorder {
            batches: StdMutex::new(Vec::new()),
            gate: tokio::sync::Semaphore::new(0),
            fail,
        });
        let batcher = Arc::new(Batcher::start(recorder.clone(), 1, 64));
        let send = |no| {
            let batcher = batcher.clone();
            tokio::spawn(async move { batcher.apply(event(no)).await })
        };
        let mut tasks = vec![send(0)];
        while recorder.batches.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tasks.extend((1..n).map(send));
        while batcher.queue.capacity() > batcher.queue.max_capacity() - (n - 1) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        recorder.gate.add_permits(1);
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        let batches = recorder.batches.lock().unwrap().clone();
        (results, batches)
    }

    #[tokio::test]
    async fn events_queued_behind_a_commit_share_the_next_one_and_each_gets_its_own_outcome() {
        let (results, batches) = run(|_| None, 6).await;
        assert_eq!(batches, [vec!["B0"], vec!["B1", "B2", "B3", "B4", "B5"]]);
        let reasons: Vec<_> = results.iter().map(|r| r.as_ref().unwrap().reason).collect();
        assert_eq!(
            reasons,
            [
                Some(AnomalyReason::AmountMismatch),
                Some(AnomalyReason::UnknownOrder),
                Some(AnomalyReason::UnknownOrder),
                Some(AnomalyReason::UnknownOrder),
                Some(AnomalyReason::UnknownOrder),
                Some(AnomalyReason::UnknownOrder)
            ]
        );
    }

    #[tokio::test]
    async fn a_statement_error_fails_only_the_event_that_caused_it() {
        let (results, batches) = run(
            |events| {
                events
                    .iter()
                    .any(|e| e.out_trade_no == "B3")
                    .then(|| StoreError::Corrupt("B3 is poison".into()))
            },
            5,
        )
        .await;
        let failed: Vec<_> = results.iter().map(Result::is_err).collect();
        assert_eq!(failed, [false, false, false, true, false]);
        assert_eq!(
            batches.len(),
            2 + 4,
            "the batch of four, then each alone: {batches:?}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_database_fails_the_batch_and_its_queue_at_once() {
        let (results, batches) =
            run(|_| Some(StoreError::Database(sqlx::Error::PoolTimedOut)), 5).await;
        assert!(results.iter().all(Result::is_err), "{results:?}");
        assert_eq!(
            batches,
            [vec!["B0"]],
            "the events queued behind the failed batch fail with it, untried"
        );
    }
}
