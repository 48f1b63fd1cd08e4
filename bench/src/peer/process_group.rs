//! A peer's processes, read from `/proc`. gunicorn is a master and forked workers, so a figure
//! from the master's pid alone would miss the work; the bench starts the peer as the leader of a
//! new process group, and sums CPU and memory over that group.

use std::fs;

/// The fields of one `/proc/<pid>/stat` the bench reads, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pgrp: i32,
    /// utime + stime: CPU the process itself used.
    pub ticks: u64,
    /// cutime + cstime: CPU of its children it has reaped (a worker gunicorn replaced).
    pub reaped_ticks: u64,
}

impl Stat {
    pub fn parse(text: &str) -> Option<Self> {
        // The command name (field 2) may hold spaces and parentheses; the fields after the last
        // `)` are fixed: state is field 3, so field n is at index n - 3.
        let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
        let number = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
        Some(Self {
            pgrp: fields.get(5 - 3)?.parse().ok()?,
            ticks: number(14)? + number(15)?,
            reaped_ticks: number(16)? + number(17)?,
        })
    }
}

/// The pids and stats of every live process in group `pgid`.
pub fn members(pgid: i32) -> Vec<(i32, Stat)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            // A process may exit between listing and reading: skip it.
            let stat = Stat::parse(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
            (stat.pgrp == pgid).then_some((pid, stat))
        })
        .collect()
}

/// CPU ticks the group has used so far: each live member's own, plus what the leader's reaped
/// children used (so a worker that died and was replaced mid-run still counts).
pub fn cpu_ticks(leader: i32, members: &[(i32, Stat)]) -> u64 {
    let own: u64 = members.iter().map(|(_, stat)| stat.ticks).sum();
    let reaped = members
        .iter()
        .find(|(pid, _)| *pid == leader)
        .map_or(0, |(_, stat)| stat.reaped_ticks);
    own + reaped
}

/// `VmHWM` (peak resident set) of one process, in KiB.
pub fn peak_rss_kib(pid: i32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gunicorn worker's stat line (comm with a space and a parenthesis).
    const WORKER: &str = "4242 (gunicorn: w) x) S 4200 4200 4200 0 -1 4194560 9000 0 0 0 \
                          1234 56 7 8 20 0 1 0 1000 300000000 12000 18446744073709551615";

    #[test]
    fn parses_group_and_times_after_the_command_name() {
        assert_eq!(
            Stat::parse(WORKER),
            Some(Stat {
                pgrp: 4200,
                ticks: 1234 + 56,
                reaped_ticks: 7 + 8,
            })
        );
    }

    #[test]
    fn a_truncated_line_is_none() {
        assert_eq!(Stat::parse("4242 (gunicorn) S 4200 4200"), None);
        assert_eq!(Stat::parse("no parenthesis here"), None);
    }

    #[test]
    fn group_cpu_is_every_member_plus_what_the_leader_reaped() {
        let stat = |ticks, reaped_ticks| Stat {
            pgrp: 10,
            ticks,
            reaped_ticks,
        };
        let members = [(10, stat(5, 100)), (11, stat(40, 0)), (12, stat(60, 3))];
        // Only the leader's reaped children count: it reaps the workers, which spawn none.
        assert_eq!(cpu_ticks(10, &members), 5 + 40 + 60 + 100);
        assert_eq!(cpu_ticks(10, &members[1..]), 40 + 60);
    }

    #[test]
    fn this_process_is_in_its_own_group() {
        let pid = std::process::id() as i32;
        // SAFETY: getpgrp only reads this process's group.
        let pgid = unsafe { libc::getpgrp() };
        assert!(members(pgid).iter().any(|(p, _)| *p == pid));
        assert!(peak_rss_kib(pid).is_some_and(|kib| kib > 0));
    }
}
