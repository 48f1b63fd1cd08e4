//! Fault knobs: ways a notification's delivery goes wrong on purpose, so that the merchant side
//! can be tested against lost requests, duplicates, races, reordering, delays and silence.

use serde::{Deserialize, Serialize};

/// More simultaneous copies than this only measures the machine, not the merchant's code.
pub const MAX_CONCURRENT: u32 = 64;

/// Set globally in `SimConfig::faults`, or per trade (by `out_trade_no`, before Pay) with
/// `SimHandle::set_faults` or `POST /sim/trades/{out_trade_no}/faults`. The default is no fault.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// The first N attempts of each notification fail as network errors without being sent; they
    /// are recorded like any failed attempt and retried on the schedule.
    pub drop_first: u32,
    /// Every attempt is POSTed twice, the second after the first has been answered.
    pub duplicate: bool,
    /// Every attempt is POSTed as this many identical copies at once (0 and 1 mean one copy).
    /// Takes precedence over `duplicate`.
    pub concurrent: u32,
    /// The payment is reported as TRADE_FINISHED first and TRADE_SUCCESS second (each with its
    /// own notify_id); the trade itself ends TRADE_FINISHED.
    pub out_of_order: bool,
    /// Extra wait before each notification's first attempt, in milliseconds of real time.
    pub delay_ms: u64,
    /// Nothing is ever sent; the notification is recorded as suppressed.
    pub never_deliver: bool,
}

impl Faults {
    /// How many identical POSTs one attempt makes, and whether they are sent at once.
    pub(crate) fn copies(&self) -> (u32, bool) {
        if self.concurrent > 1 {
            (self.concurrent.min(MAX_CONCURRENT), true)
        } else if self.duplicate {
            (2, false)
        } else {
            (1, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_wins_over_duplicate_and_is_capped() {
        assert_eq!(Faults::default().copies(), (1, false));
        let twice = Faults {
            duplicate: true,
            ..Faults::default()
        };
        assert_eq!(twice.copies(), (2, false));
        let burst = Faults {
            duplicate: true,
            concurrent: 1000,
            ..Faults::default()
        };
        assert_eq!(burst.copies(), (MAX_CONCURRENT, true));
    }

    #[test]
    fn json_knobs_are_optional_but_unknown_ones_are_refused() {
        let faults: Faults = serde_json::from_str(r#"{"drop_first":2}"#).unwrap();
        assert_eq!(faults.drop_first, 2);
        assert!(serde_json::from_str::<Faults>(r#"{"drop":2}"#).is_err());
    }
}
