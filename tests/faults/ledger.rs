//! What the database holds after the fault, read through the store itself (`order`, `audit_log`),
//! set against what the test sent and what it was told.

use std::collections::BTreeMap;

use alipay_notify::orders::OrderStatus;
use futures::stream::{self, StreamExt};

use crate::traffic::{Reply, Sent};

/// One order as stored: its status and its audit rows.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    pub status: Option<OrderStatus>,
    pub applied: usize,
    pub rows: usize,
}

/// Per order: how many deliveries were sent, and how many were answered `success`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Told {
    pub sent: usize,
    pub successes: usize,
}

pub async fn read(database_url: &str, numbers: &[String]) -> BTreeMap<String, Stored> {
    let store = alipay_notify::orders::connect(database_url, 2, Default::default())
        .await
        .expect("open the database the service used");
    let store = &store;
    stream::iter(numbers)
        .map(|no| async move {
            let order = store.order(no).await.expect("read order");
            let log = store.audit_log(no).await.expect("read audit log");
            let stored = Stored {
                status: order.map(|o| o.status),
                applied: log
                    .iter()
                    .filter(|e| e.verdict.as_str() == "applied")
                    .count(),
                rows: log.len(),
            };
            (no.clone(), stored)
        })
        .buffer_unordered(4)
        .collect()
        .await
}

pub fn tally<'a>(sent: impl IntoIterator<Item = &'a Sent>) -> BTreeMap<String, Told> {
    let mut told: BTreeMap<String, Told> = BTreeMap::new();
    for s in sent {
        let entry = told.entry(s.delivery.no.clone()).or_default();
        entry.sent += 1;
        entry.successes += usize::from(s.reply == Reply::Success);
    }
    told
}

/// Counts of replies by kind, for the report: `(success, fail answers, no answer)`.
pub fn reply_counts<'a>(sent: impl IntoIterator<Item = &'a Sent>) -> (usize, usize, usize) {
    sent.into_iter()
        .fold((0, 0, 0), |(ok, refused, none), s| match s.reply {
            Reply::Success => (ok + 1, refused, none),
            Reply::Refused { .. } => (ok, refused + 1, none),
            Reply::NoAnswer(_) => (ok, refused, none + 1),
        })
}

/// Never half-written: an order is paid exactly when it has one `applied` row, and no order has
/// two. Every `success` is backed by a committed audit row, and no request wrote two rows.
pub fn assert_whole(stored: &BTreeMap<String, Stored>, told: &BTreeMap<String, Told>) {
    let mut problems = Vec::new();
    for (no, s) in stored {
        let paid = s.status == Some(OrderStatus::Paid);
        if s.status.is_none() {
            problems.push(format!("{no}: order missing"));
        }
        if s.applied > 1 {
            problems.push(format!("{no}: {} applied rows", s.applied));
        }
        if paid != (s.applied == 1) {
            problems.push(format!(
                "{no}: status {:?} with {} applied rows",
                s.status, s.applied
            ));
        }
        let t = told.get(no).copied().unwrap_or_default();
        if t.successes > 0 && !paid {
            problems.push(format!("{no}: answered success but {:?}", s.status));
        }
        if s.rows < t.successes {
            problems.push(format!(
                "{no}: {} success replies but only {} audit rows",
                t.successes, s.rows
            ));
        }
        if s.rows > t.sent {
            problems.push(format!(
                "{no}: {} audit rows for {} requests",
                s.rows, t.sent
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "inconsistent state:\n{}",
        problems.join("\n")
    );
}

/// Every order paid, each exactly once.
pub fn assert_all_paid_once(stored: &BTreeMap<String, Stored>) {
    let wrong: Vec<_> = stored
        .iter()
        .filter(|(_, s)| s.status != Some(OrderStatus::Paid) || s.applied != 1)
        .collect();
    assert!(
        wrong.is_empty(),
        "{} orders not paid exactly once: {wrong:?}",
        wrong.len()
    );
}
