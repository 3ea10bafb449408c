//! `tessera-load guard`: runs one benchmark command on a quiet machine and says whether the
//! machine stayed quiet (the rules are in the library's `guard` module).
//!
//! Waits until other processes leave the machine alone, starts the command, samples
//! `/proc/stat` and the watched processes' `/proc/PID/stat` every second, kills the command when
//! the run is disturbed, and writes the verdict as one JSON object. The command's own output
//! goes where the guard's goes.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::Context;
use tessera_load::guard::{
    Limits, ProcessStat, QuietWait, RunWatch, Sample, Verdict, load_between, parse_machine,
    parse_process, watched_pids,
};

use crate::clock;

/// What `guard` was asked for.
#[derive(Debug)]
pub struct GuardOptions {
    /// Processes whose CPU is the run's own (the server); the command and its descendants are
    /// watched too.
    pub server_pids: Vec<u32>,
    /// Processes by name whose CPU is the run's own (`postgres`).
    pub names: Vec<String>,
    /// The thresholds.
    pub limits: Limits,
    /// Longest wait for a quiet machine, seconds; the run starts anyway after it (and will
    /// most likely not be clean).
    pub max_wait: f64,
    /// Where to write the verdict (stderr without).
    pub verdict: Option<PathBuf>,
    /// The command and its arguments.
    pub command: Vec<String>,
}

const TICK: Duration = Duration::from_secs(1);

/// Every process now: pid and stat.
fn processes() -> Vec<(u32, ProcessStat)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, parse_process(&text)?))
        })
        .collect()
}

/// The machine's counters and the ticks of the run's own processes (`roots`, their
/// descendants, and the named ones).
fn sample(roots: &[u32], names: &[String]) -> Sample {
    let machine = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| parse_machine(&s))
        .unwrap_or_default();
    let all = processes();
    let ours = watched_pids(&all, roots, names);
    let watched = all
        .iter()
        .filter(|(pid, _)| ours.contains(pid))
        .map(|(_, stat)| stat.ticks)
        .sum();
    Sample { machine, watched }
}

fn cores() -> u32 {
    std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(1))
        .unwrap_or(1)
}

/// Runs the guard; the exit status is the command's, or 75 (try again later) when the run was
/// aborted.
pub fn guard(options: GuardOptions) -> anyhow::Result<ExitCode> {
    let (program, args) = options
        .command
        .split_first()
        .context("guard: no command given (after --)")?;
    let cores = cores();
    let me = std::process::id();
    // Wait for a quiet machine (the guard itself and the server count as ours).
    let mut watched: Vec<u32> = options.server_pids.clone();
    watched.push(me);
    let waiting_since = clock::now();
    let mut wait = QuietWait::default();
    let mut last = sample(&watched, &options.names);
    loop {
        std::thread::sleep(TICK);
        let now = sample(&watched, &options.names);
        let quiet = wait.observe(&load_between(&last, &now, cores), &options.limits);
        last = now;
        if quiet || clock::now().duration_since(waiting_since).as_secs_f64() > options.max_wait {
            break;
        }
    }
    let waited = clock::now().duration_since(waiting_since).as_secs_f64();

    let mut child = Command::new(program)
        .args(args)
        .spawn()
        .with_context(|| format!("guard: cannot start {program}"))?;
    watched.push(child.id());
    let mut watch = RunWatch::default();
    let mut last = sample(&watched, &options.names);
    let mut next = clock::now() + TICK;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if clock::now() >= next {
            let now = sample(&watched, &options.names);
            if watch.observe(&load_between(&last, &now, cores), &options.limits) {
                // Disturbed: stop now, the run is repeated later. SIGINT first: tessera-load
                // then writes the counters it used to the seed file, wrk prints what it sent.
                stop(&mut child);
                break None;
            }
            last = now;
            next += TICK;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let verdict = watch.verdict(&options.limits);
    write_verdict(&options, &verdict, waited)?;
    Ok(match status {
        None => ExitCode::from(75),
        Some(status) => match status.code() {
            Some(0) => ExitCode::SUCCESS,
            Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            None => ExitCode::FAILURE,
        },
    })
}

/// Interrupts the command (as Ctrl-C would) and waits for it to end; kills it if it has not
/// ended 20 s later (a request in flight may take its timeout).
fn stop(child: &mut std::process::Child) {
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    if interrupted {
        let until = clock::now() + Duration::from_secs(20);
        while clock::now() < until {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn write_verdict(options: &GuardOptions, verdict: &Verdict, waited: f64) -> anyhow::Result<()> {
    let mut value = serde_json::to_value(verdict)?;
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "waited_for_quiet_s".into(),
            serde_json::json!((waited * 10.0).round() / 10.0),
        );
    }
    let line = format!("{value}\n");
    match &options.verdict {
        Some(path) => {
            std::fs::write(path, line).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            eprint!("{line}");
            Ok(())
        }
    }
}
