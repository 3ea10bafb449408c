//! Is the machine quiet enough to measure? (`tessera-load guard`, used by `scripts/bench.sh`.)
//!
//! The benchmark machine is shared: another job's compiler on the same two cores turns a
//! latency figure into a figure about that compiler. Like the privacyIDEA anchor's `bench.py`,
//! the guard waits for a quiet machine before a run, watches every second during it how much
//! CPU went to processes other than the server and the load generator ("other"), and how much
//! the hypervisor took from this guest ("steal"), aborts a run that is disturbed for two seconds
//! in a row, and flags a finished run whose averages are too high, so that the run is repeated.
//!
//! No I/O: callers read `/proc/stat` and `/proc/PID/stat` and pass the text.

use serde::Serialize;

/// The machine's CPU counters from the first line of `/proc/stat`, in clock ticks summed over
/// all cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MachineTimes {
    /// All time (every column).
    pub total: u64,
    /// Idle and waiting for I/O.
    pub idle: u64,
    /// Taken by the hypervisor while this guest wanted to run.
    pub steal: u64,
}

/// Parses the `cpu` line of `/proc/stat`: `cpu user nice system idle iowait irq softirq steal
/// guest guest_nice`. Guest time is already counted in user time, so it is left out of `total`.
pub fn parse_machine(proc_stat: &str) -> Option<MachineTimes> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if v.len() < 4 {
        return None;
    }
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    Some(MachineTimes {
        total: (0..8).map(at).sum(),
        idle: at(3) + at(4),
        steal: at(7),
    })
}

/// A process as `/proc/PID/stat` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessStat {
    /// The command name (without the parentheses).
    pub name: String,
    /// The parent's process id.
    pub ppid: u32,
    /// User + system ticks of the process (all its threads), plus those of its children that
    /// ended and were waited for: so the CPU of a shell's commands stays counted when they end.
    pub ticks: u64,
}

/// Parses `/proc/PID/stat`.
pub fn parse_process(pid_stat: &str) -> Option<ProcessStat> {
    // The command name is in parentheses and may contain spaces: fields count from after it.
    let open = pid_stat.find('(')?;
    let close = pid_stat.rfind(')')?;
    let name = pid_stat.get(open + 1..close)?.to_owned();
    let after = pid_stat.get(close + 2..)?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let number = |i: usize| fields.get(i).and_then(|x| x.parse::<u64>().ok());
    Some(ProcessStat {
        name,
        ppid: u32::try_from(number(1)?).ok()?,
        ticks: number(11)? + number(12)? + number(13)? + number(14)?,
    })
}

/// The processes to count as the run's own among `all` (pid and stat): the `roots`, their
/// descendants, and every process named one of `names` (e.g. `postgres`, whose backends come
/// and go with the server's connections).
pub fn watched_pids(all: &[(u32, ProcessStat)], roots: &[u32], names: &[String]) -> Vec<u32> {
    let mut out: Vec<u32> = roots.to_vec();
    let mut grew = true;
    while grew {
        grew = false;
        for (pid, stat) in all {
            let ours = out.contains(&stat.ppid) || names.contains(&stat.name);
            if ours && !out.contains(pid) {
                out.push(*pid);
                grew = true;
            }
        }
    }
    out
}

/// One observation: the machine's counters and the watched processes' ticks (server, load
/// generator) at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    /// From `/proc/stat`.
    pub machine: MachineTimes,
    /// Sum over the watched processes.
    pub watched: u64,
}

/// What happened between two samples, in % of one core (100 = one core busy all the time).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    /// Busy time of processes other than the watched ones.
    pub other: f64,
    /// Time the hypervisor took.
    pub steal: f64,
    /// Busy time of the whole machine.
    pub busy: f64,
}

/// The load between `a` and `b` on a machine with `cores` cores. A watched process that ended
/// in between (its ticks gone) counts as zero, never as negative.
pub fn load_between(a: &Sample, b: &Sample, cores: u32) -> Load {
    let total = b.machine.total.saturating_sub(a.machine.total);
    if total == 0 {
        return Load {
            other: 0.0,
            steal: 0.0,
            busy: 0.0,
        };
    }
    let cores = f64::from(cores.max(1));
    let idle = b.machine.idle.saturating_sub(a.machine.idle);
    let steal = b.machine.steal.saturating_sub(a.machine.steal);
    // Ticks are per core: `total` ticks over the interval on `cores` cores.
    let pct = |ticks: u64| 100.0 * cores * ticks as f64 / total as f64;
    let busy_ticks = total.saturating_sub(idle).saturating_sub(steal);
    let watched = b.watched.saturating_sub(a.watched);
    Load {
        other: pct(busy_ticks.saturating_sub(watched)),
        steal: pct(steal),
        busy: pct(busy_ticks),
    }
}

/// The thresholds, in % of one core.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Before a run: wait until other processes use less than this for two samples in a row.
    pub quiet: f64,
    /// During a run: abort when other processes use more than this for two samples in a row.
    pub abort_other: f64,
    /// After a run: the run is clean if other processes used at most this on average...
    pub max_other: f64,
    /// ...and the hypervisor took at most this on average.
    pub max_steal: f64,
}

impl Default for Limits {
    /// The privacyIDEA anchor's thresholds (`bench.py`): quiet below 15 %, abort above 40 %
    /// for 2 s, clean at most 15 %; steal at most 5 % of a core.
    fn default() -> Limits {
        Limits {
            quiet: 15.0,
            abort_other: 40.0,
            max_other: 15.0,
            max_steal: 5.0,
        }
    }
}

/// Whether two loads in a row exceed `limit` (of other + steal: both take CPU from the run).
fn hot(load: &Load, limit: f64) -> bool {
    load.other + load.steal > limit
}

/// Waits for quiet: fed one load per second, says when two in a row were quiet.
#[derive(Debug, Clone, Default)]
pub struct QuietWait {
    quiet_in_a_row: u32,
}

impl QuietWait {
    /// Records a second's load; true once two seconds in a row were below `limits.quiet`.
    pub fn observe(&mut self, load: &Load, limits: &Limits) -> bool {
        if hot(load, limits.quiet) {
            self.quiet_in_a_row = 0;
        } else {
            self.quiet_in_a_row += 1;
        }
        self.quiet_in_a_row >= 2
    }
}

/// Watches a run second by second.
#[derive(Debug, Clone, Default)]
pub struct RunWatch {
    seconds: u32,
    other_sum: f64,
    steal_sum: f64,
    other_max: f64,
    hot_in_a_row: u32,
    aborted: bool,
}

/// The guard's verdict on a run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verdict {
    /// Neither aborted nor above the averages' limits: the figures count.
    pub clean: bool,
    /// Stopped because other processes kept taking CPU.
    pub aborted: bool,
    /// Seconds observed.
    pub seconds: u32,
    /// Average CPU of other processes, % of one core.
    pub other_cpu_pct_of_1core: f64,
    /// Highest one-second value of that.
    pub other_cpu_max_pct_of_1core: f64,
    /// Average steal time, % of one core.
    pub steal_pct_of_1core: f64,
}

impl RunWatch {
    /// Records a second's load; true when the run should be aborted (two hot seconds in a row).
    pub fn observe(&mut self, load: &Load, limits: &Limits) -> bool {
        self.seconds += 1;
        self.other_sum += load.other;
        self.steal_sum += load.steal;
        self.other_max = self.other_max.max(load.other);
        if hot(load, limits.abort_other) {
            self.hot_in_a_row += 1;
        } else {
            self.hot_in_a_row = 0;
        }
        if self.hot_in_a_row >= 2 {
            self.aborted = true;
        }
        self.aborted
    }

    /// The verdict over what was observed.
    pub fn verdict(&self, limits: &Limits) -> Verdict {
        let n = f64::from(self.seconds.max(1));
        let other = self.other_sum / n;
        let steal = self.steal_sum / n;
        let round1 = |x: f64| (x * 10.0).round() / 10.0;
        Verdict {
            clean: !self.aborted && other <= limits.max_other && steal <= limits.max_steal,
            aborted: self.aborted,
            seconds: self.seconds,
            other_cpu_pct_of_1core: round1(other),
            other_cpu_max_pct_of_1core: round1(self.other_max),
            steal_pct_of_1core: round1(steal),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 5 50 800 20 1 2 7 0 0\ncpu0 50 2 25 400 10 0 1 3 0 0\n";

    #[test]
    fn parses_proc_stat_and_pid_stat() {
        let m = parse_machine(STAT).unwrap();
        assert_eq!(
            m,
            MachineTimes {
                total: 985,
                idle: 820,
                steal: 7
            }
        );
        assert_eq!(parse_machine("intr 1 2 3"), None);
        let pid = "4242 (tessera serve) S 1 4242 4242 0 -1 4194560 100 0 0 0 350 120 7 3 20 0 9";
        assert_eq!(
            parse_process(pid),
            Some(ProcessStat {
                name: "tessera serve".into(),
                ppid: 1,
                ticks: 480
            })
        );
        assert_eq!(parse_process("4242 (x"), None);
    }

    #[test]
    fn watches_the_roots_their_descendants_and_named_processes() {
        let p = |ppid, name: &str| ProcessStat {
            name: name.into(),
            ppid,
            ticks: 0,
        };
        let all = vec![
            (10, p(1, "bash")),
            (11, p(10, "wrk")),
            (12, p(11, "helper")),
            (20, p(1, "cargo")),
            (21, p(20, "rustc")),
            (30, p(1, "postgres")),
            (31, p(30, "postgres")),
        ];
        let mut got = watched_pids(&all, &[10], &["postgres".into()]);
        got.sort_unstable();
        assert_eq!(got, [10, 11, 12, 30, 31]);
        assert_eq!(watched_pids(&all, &[99], &[]), [99]);
    }

    fn sample(total: u64, idle: u64, steal: u64, watched: u64) -> Sample {
        Sample {
            machine: MachineTimes { total, idle, steal },
            watched,
        }
    }

    #[test]
    fn other_is_the_busy_time_the_watched_processes_did_not_use() {
        // One second on 2 cores = 200 ticks: 60 idle, 10 stolen, 130 busy of which the server
        // and the tool used 100.
        let load = load_between(&sample(1000, 500, 0, 40), &sample(1200, 560, 10, 140), 2);
        assert!((load.busy - 130.0).abs() < 1e-9, "{load:?}");
        assert!((load.other - 30.0).abs() < 1e-9, "{load:?}");
        assert!((load.steal - 10.0).abs() < 1e-9, "{load:?}");
        // A watched process that ended: its ticks vanish, nothing goes negative.
        let load = load_between(&sample(1000, 500, 0, 900), &sample(1200, 600, 0, 0), 2);
        assert!((load.other - 100.0).abs() < 1e-9, "{load:?}");
        assert_eq!(
            load_between(&sample(5, 1, 0, 0), &sample(5, 1, 0, 0), 2).other,
            0.0
        );
    }

    fn load(other: f64, steal: f64) -> Load {
        Load {
            other,
            steal,
            busy: other,
        }
    }

    #[test]
    fn waits_for_two_quiet_seconds_in_a_row() {
        let limits = Limits::default();
        let mut wait = QuietWait::default();
        assert!(!wait.observe(&load(5.0, 0.0), &limits));
        assert!(!wait.observe(&load(80.0, 0.0), &limits));
        assert!(!wait.observe(&load(5.0, 0.0), &limits));
        assert!(wait.observe(&load(5.0, 0.0), &limits));
        // Steal counts as disturbance too.
        let mut wait = QuietWait::default();
        assert!(!wait.observe(&load(1.0, 20.0), &limits));
        assert!(!wait.observe(&load(1.0, 0.0), &limits));
        assert!(wait.observe(&load(1.0, 0.0), &limits));
    }

    #[test]
    fn aborts_after_two_disturbed_seconds_and_judges_the_averages() {
        let limits = Limits::default();
        let mut run = RunWatch::default();
        for other in [3.0, 60.0, 4.0, 5.0] {
            assert!(
                !run.observe(&load(other, 0.0), &limits),
                "one hot second is tolerated"
            );
        }
        let v = run.verdict(&limits);
        // (3 + 60 + 4 + 5) / 4 = 18 % on average: above the 15 % limit, so not clean.
        assert!(!v.clean && !v.aborted, "{v:?}");
        assert_eq!((v.seconds, v.other_cpu_pct_of_1core), (4, 18.0));
        assert_eq!(v.other_cpu_max_pct_of_1core, 60.0);

        let mut run = RunWatch::default();
        assert!(!run.observe(&load(50.0, 0.0), &limits));
        assert!(run.observe(&load(45.0, 0.0), &limits));
        assert!(run.verdict(&limits).aborted);

        let mut run = RunWatch::default();
        for _ in 0..10 {
            run.observe(&load(4.0, 0.5), &limits);
        }
        assert!(run.verdict(&limits).clean);
        let mut run = RunWatch::default();
        for _ in 0..10 {
            run.observe(&load(4.0, 8.0), &limits);
        }
        assert!(!run.verdict(&limits).clean, "steal above 5 %");
    }
}
