//! When each request of an open-loop run is meant to go: phase after phase at a constant rate,
//! each phase starting the instant the previous one ends, whatever the replies do.

use std::time::Duration;

/// A stretch of constant offered load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// Requests per second offered.
    pub rate: f64,
    pub seconds: f64,
}

impl Phase {
    pub fn new(rate: f64, seconds: f64) -> anyhow::Result<Self> {
        anyhow::ensure!(
            rate.is_finite() && rate > 0.0,
            "a rate must be a positive number of requests per second, not {rate}"
        );
        anyhow::ensure!(
            seconds.is_finite() && seconds > 0.0,
            "a duration must be a positive number of seconds, not {seconds}"
        );
        Ok(Self { rate, seconds })
    }

    /// Requests this phase offers: rate × duration, rounded.
    pub fn requests(&self) -> usize {
        (self.rate * self.seconds).round() as usize
    }
}

/// The intended send times of a whole run.
#[derive(Debug, Clone)]
pub struct Schedule {
    phases: Vec<Phase>,
}

/// One request's place in the schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    pub phase: usize,
    /// Its intended send time, from the start of the run.
    pub at: Duration,
}

impl Schedule {
    pub fn new(phases: Vec<Phase>) -> Self {
        Self { phases }
    }

    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    pub fn requests(&self) -> usize {
        self.phases.iter().map(Phase::requests).sum()
    }

    /// When phase `index` starts, from the start of the run.
    pub fn phase_start(&self, index: usize) -> f64 {
        self.phases[..index].iter().map(|p| p.seconds).sum()
    }

    /// Every request's slot, in order: request `i` of a phase at `phase_start + i / rate`.
    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.phases.iter().enumerate().flat_map(|(index, phase)| {
            let start = self.phase_start(index);
            (0..phase.requests()).map(move |i| Slot {
                phase: index,
                at: Duration::from_secs_f64(start + i as f64 / phase.rate),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(slot: &Slot) -> u128 {
        slot.at.as_micros()
    }

    #[test]
    fn a_thousand_per_second_is_one_request_each_millisecond() {
        let schedule = Schedule::new(vec![Phase::new(1000.0, 2.0).unwrap()]);
        let slots: Vec<Slot> = schedule.slots().collect();
        assert_eq!(slots.len(), 2000);
        assert_eq!(schedule.requests(), 2000);
        for (i, slot) in slots.iter().enumerate() {
            assert_eq!(micros(slot), i as u128 * 1000, "request {i}");
        }
    }

    #[test]
    fn the_second_phase_continues_where_the_first_ends() {
        let schedule = Schedule::new(vec![
            Phase::new(1000.0, 1.0).unwrap(),
            Phase::new(250.0, 2.0).unwrap(),
        ]);
        let slots: Vec<Slot> = schedule.slots().collect();
        assert_eq!(slots.len(), 1000 + 500);
        assert_eq!(micros(&slots[999]), 999_000);
        assert_eq!((slots[999].phase, slots[1000].phase), (0, 1));
        assert_eq!(micros(&slots[1000]), 1_000_000, "no gap, no overlap");
        assert_eq!(micros(&slots[1001]), 1_004_000, "the new rate");
        assert_eq!(micros(&slots[1499]), 2_996_000);
        assert!(slots.windows(2).all(|w| w[0].at < w[1].at));
    }

    #[test]
    fn rates_and_durations_must_be_positive() {
        assert!(Phase::new(0.0, 1.0).is_err());
        assert!(Phase::new(100.0, -1.0).is_err());
        assert!(Phase::new(f64::NAN, 1.0).is_err());
    }
}
