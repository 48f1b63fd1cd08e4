//! What one run sends: the orders it pays (and the control orders it never notifies), numbered
//! under a random run id so runs never collide, and how many byte-identical repeats go with them.

use std::collections::HashSet;
use std::sync::Arc;

use alipay_notify::money::Amount;

use super::database::Scope;
use super::notifications::{self, PaidOrder};
use super::open_loop::schedule::Schedule;

pub struct Plan {
    pub sent: Vec<PaidOrder>,
    /// Seeded, never notified: they must stay pending.
    pub controls: Vec<PaidOrder>,
    pub duplicates: usize,
    pub run_id: String,
    /// Open loop: when each request goes. Closed loop (`None`): each as soon as a worker is free.
    pub schedule: Option<Schedule>,
}

impl Plan {
    /// `orders` orders, plus `duplicates` × `orders` repeats (closed loop: --orders).
    pub fn new(orders: usize, duplicates: f64) -> anyhow::Result<Self> {
        anyhow::ensure!(orders > 0, "--orders must be at least 1");
        check_fraction(duplicates)?;
        let repeats = (orders as f64 * duplicates).round() as usize;
        Ok(Self::numbered(orders, repeats))
    }

    /// One request per slot of `schedule`, split into orders and repeats so that repeats ≈
    /// `duplicates` × orders (open loop: the count follows from rate × duration).
    pub fn open_loop(schedule: Schedule, duplicates: f64) -> anyhow::Result<Self> {
        let requests = schedule.requests();
        anyhow::ensure!(
            requests > 0,
            "the schedule sends no request: raise --rate or --duration"
        );
        check_fraction(duplicates)?;
        let orders = ((requests as f64 / (1.0 + duplicates)).round() as usize).clamp(1, requests);
        Ok(Self {
            schedule: Some(schedule),
            ..Self::numbered(orders, requests - orders)
        })
    }

    fn numbered(orders: usize, duplicates: usize) -> Self {
        let run_id = format!("{:08x}", fastrand::u32(..));
        let order = |kind: char, i: usize| PaidOrder {
            out_trade_no: format!("BENCH{run_id}{kind}{i:07}"),
            amount: Amount::from_fen(100 + (i as i64 * 37) % 99_900).expect("in range"),
        };
        Self {
            sent: (0..orders).map(|i| order('N', i)).collect(),
            controls: (0..(orders / 100).clamp(3, 100))
                .map(|i| order('C', i))
                .collect(),
            duplicates,
            run_id,
            schedule: None,
        }
    }

    pub fn all_orders(&self) -> Vec<PaidOrder> {
        self.sent.iter().chain(&self.controls).cloned().collect()
    }

    pub fn requests(&self) -> usize {
        self.sent.len() + self.duplicates
    }

    /// `fresh`: the database holds nothing but this run, so "nothing else paid" covers it all.
    pub fn scope(&self, fresh: bool) -> Scope {
        let run = format!("BENCH{}", self.run_id);
        Scope {
            sent: format!("{run}N%"),
            controls: format!("{run}C%"),
            all: if fresh { "%".into() } else { format!("{run}%") },
        }
    }
}

/// The signed notifications in sending order, and the index in `Plan::sent` of the order each
/// pays.
pub struct Requests {
    pub bodies: Arc<Vec<Arc<[u8]>>>,
    orders: Vec<usize>,
}

impl Requests {
    /// One body per order of the plan (in its order), with `duplicates` byte-identical repeats
    /// shuffled in.
    pub fn shuffled(bodies: Vec<Vec<u8>>, duplicates: usize) -> Self {
        let numbered: Vec<(usize, Arc<[u8]>)> =
            bodies.into_iter().map(Arc::from).enumerate().collect();
        let (orders, bodies) = notifications::with_duplicates(numbered, duplicates)
            .into_iter()
            .unzip();
        Self {
            bodies: Arc::new(bodies),
            orders,
        }
    }

    /// The orders answered `success` by at least one of their requests, given whether each
    /// request was (open loop); `None` when that was not recorded (closed loop).
    pub fn answered(&self, plan: &Plan, success: Option<&[bool]>) -> Option<HashSet<String>> {
        Some(
            success?
                .iter()
                .zip(&self.orders)
                .filter(|(success, _)| **success)
                .map(|(_, &order)| plan.sent[order].out_trade_no.clone())
                .collect(),
        )
    }
}

fn check_fraction(duplicates: f64) -> anyhow::Result<()> {
    anyhow::ensure!(
        duplicates.is_finite() && (0.0..=10.0).contains(&duplicates),
        "--duplicates must be a fraction between 0 and 10"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::open_loop::schedule::Phase;

    fn schedule(phases: &[(f64, f64)]) -> Schedule {
        Schedule::new(
            phases
                .iter()
                .map(|&(rate, seconds)| Phase::new(rate, seconds).unwrap())
                .collect(),
        )
    }

    #[test]
    fn open_loop_plan_sends_exactly_the_scheduled_requests() {
        let plan = Plan::open_loop(schedule(&[(500.0, 2.0)]), 0.2).unwrap();
        assert_eq!(plan.requests(), 1_000);
        assert_eq!(plan.sent.len(), 833);
        assert_eq!(plan.duplicates, 167);
    }

    #[test]
    fn open_loop_plan_counts_both_phases() {
        let plan = Plan::open_loop(schedule(&[(1000.0, 3.0), (250.0, 2.0)]), 0.0).unwrap();
        assert_eq!((plan.sent.len(), plan.duplicates), (3_500, 0));
    }

    #[test]
    fn an_order_is_answered_when_any_of_its_copies_is() {
        let plan = Plan::new(3, 1.0).unwrap();
        let bodies: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i]).collect();
        let requests = Requests::shuffled(bodies, 3);
        // Only the last copy of order 1 is answered `success`.
        let last = requests.bodies.iter().rposition(|b| **b == [1]).unwrap();
        let success: Vec<bool> = (0..6).map(|i| i == last).collect();

        let answered = requests.answered(&plan, Some(&success)).unwrap();

        assert_eq!(answered, HashSet::from([plan.sent[1].out_trade_no.clone()]));
    }

    #[test]
    fn open_loop_plan_of_one_request_is_one_order() {
        let plan = Plan::open_loop(schedule(&[(1.0, 1.0)]), 5.0).unwrap();
        assert_eq!((plan.sent.len(), plan.duplicates), (1, 0));
    }
}
