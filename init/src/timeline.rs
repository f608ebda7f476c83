//! The boot timeline: each phase's duration on `CLOCK_BOOTTIME`, plus kernel-start-to-init from
//! `/proc/uptime`, packages and bytes installed, and the total.
//!
//! Pure: times are passed in, so formatting is testable; the executor feeds it `sys::boottime()`.
//! It is printed at the end of a successful boot (unless `quiet`) and after every failure, and kept
//! in the new root at [`TIMELINE_FILE`]: `/var/log` rather than `/run`, because OpenRC may mount a
//! fresh tmpfs on `/run` and the file must survive into the running system.
use std::fmt::Write as _;
use std::time::Duration;

/// Where the timeline is kept in the new root.
pub const TIMELINE_FILE: &str = "var/log/boot-timeline.txt";

/// How a phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still running (shown up to the render time; the failure report ends it as failed).
    Running,
    /// Finished.
    Done,
    /// Failed.
    Failed,
}

/// One phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    /// Name shown in the table (`media discovery`).
    pub name: String,
    /// Boot time when it started.
    pub start: Duration,
    /// Boot time when it ended.
    pub end: Option<Duration>,
    /// How it ended.
    pub outcome: Outcome,
    /// A short note (`3 devices`, `23 packages, 12.3 MiB`).
    pub note: String,
}

/// The whole timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// Boot time at which init started.
    pub init_start: Duration,
    /// `/proc/uptime` when init started (kernel start → init), if it could be read.
    pub kernel_to_init: Option<Duration>,
    /// Phases in order.
    pub phases: Vec<Phase>,
    /// Packages installed and their bytes, when the install ran.
    pub installed: Option<(usize, u64)>,
}

impl Timeline {
    /// Starts a timeline at boot time `now`.
    pub fn start(now: Duration, kernel_to_init: Option<Duration>) -> Self {
        Self {
            init_start: now,
            kernel_to_init,
            phases: Vec::new(),
            installed: None,
        }
    }

    /// Starts a phase, ending a phase still running (as done).
    pub fn begin(&mut self, name: &str, now: Duration) {
        self.end(now, Outcome::Done);
        self.phases.push(Phase {
            name: name.to_string(),
            start: now,
            end: None,
            outcome: Outcome::Running,
            note: String::new(),
        });
    }

    /// Ends the running phase, if any.
    pub fn end(&mut self, now: Duration, outcome: Outcome) {
        if let Some(p) = self.phases.last_mut() {
            if p.outcome == Outcome::Running {
                p.end = Some(now);
                p.outcome = outcome;
            }
        }
    }

    /// Attaches a note to the running (or last) phase.
    pub fn note(&mut self, note: impl Into<String>) {
        if let Some(p) = self.phases.last_mut() {
            p.note = note.into();
        }
    }

    /// Records the install totals.
    pub fn set_installed(&mut self, packages: usize, bytes: u64) {
        self.installed = Some((packages, bytes));
    }

    /// The table, as printed and stored. `now` closes a running phase for display only.
    pub fn render(&self, now: Duration) -> String {
        let mut out = String::from("boot timeline (CLOCK_BOOTTIME):\n");
        fn row(out: &mut String, label: &str, d: Duration, note: &str) {
            let _ = write!(out, "  {label:<28} {:>9}", secs(d));
            if !note.is_empty() {
                let _ = write!(out, "  {note}");
            }
            out.push('\n');
        }
        if let Some(k) = self.kernel_to_init {
            row(&mut out, "kernel start -> init", k, "");
        }
        for p in &self.phases {
            let end = p.end.unwrap_or(now);
            let mut note = p.note.clone();
            let status = match p.outcome {
                Outcome::Failed => Some("(failed)"),
                Outcome::Running | Outcome::Done => None,
            };
            if let Some(s) = status {
                note = if note.is_empty() {
                    s.to_string()
                } else {
                    format!("{note} {s}")
                };
            }
            row(&mut out, &p.name, end.saturating_sub(p.start), &note);
        }
        if let Some((n, bytes)) = self.installed {
            let _ = writeln!(out, "  packages installed: {n} ({})", human_bytes(bytes));
        }
        let init_total = now.saturating_sub(self.init_start);
        row(&mut out, "init total", init_total, "");
        // CLOCK_BOOTTIME starts with the kernel, so `now` is kernel start -> now.
        row(&mut out, "kernel start -> now", now, "");
        out
    }
}

/// `1.234 s`
pub fn secs(d: Duration) -> String {
    format!("{}.{:03} s", d.as_secs(), d.subsec_millis())
}

/// `12.3 MiB`, `512 B`
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// Parses the first field of `/proc/uptime` (`12.34 56.78`).
pub fn parse_uptime(text: &str) -> Option<Duration> {
    let first = text.split_whitespace().next()?;
    let (s, frac) = first.split_once('.').unwrap_or((first, "0"));
    let secs: u64 = s.parse().ok()?;
    let frac = format!("{frac:0<9}");
    let nanos: u32 = frac.get(..9)?.parse().ok()?;
    Some(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn renders_phases_totals_and_packages() {
        let mut t = Timeline::start(ms(1200), Some(ms(1150)));
        t.begin("early setup", ms(1200));
        t.begin("boot drivers", ms(1210));
        t.note("4 modules");
        t.begin("media discovery", ms(1300));
        t.end(ms(6300), Outcome::Done);
        t.set_installed(23, 12_900_000);
        let text = t.render(ms(7000));
        assert_eq!(
            text,
            "boot timeline (CLOCK_BOOTTIME):\n\
             \x20 kernel start -> init           1.150 s\n\
             \x20 early setup                    0.010 s\n\
             \x20 boot drivers                   0.090 s  4 modules\n\
             \x20 media discovery                5.000 s\n\
             \x20 packages installed: 23 (12.3 MiB)\n\
             \x20 init total                     5.800 s\n\
             \x20 kernel start -> now            7.000 s\n"
        );
    }

    #[test]
    fn failed_phase_is_marked_and_running_one_is_not() {
        let mut t = Timeline::start(ms(0), None);
        t.begin("media discovery", ms(100));
        t.note("0 devices");
        let text = t.render(ms(5100));
        assert!(
            text.contains("media discovery                5.000 s  0 devices\n"),
            "{text}"
        );
        assert!(!text.contains("kernel start -> init"));
        t.end(ms(5100), Outcome::Failed);
        assert!(t.render(ms(9000)).contains("5.000 s  0 devices (failed)"));
    }

    #[test]
    fn begin_closes_the_previous_phase_once() {
        let mut t = Timeline::start(ms(0), None);
        t.begin("a", ms(0));
        t.end(ms(5), Outcome::Failed);
        t.begin("b", ms(10));
        assert_eq!(t.phases[0].end, Some(ms(5)));
        assert_eq!(t.phases[0].outcome, Outcome::Failed);
    }

    #[test]
    fn uptime_and_units() {
        assert_eq!(
            parse_uptime("12.34 56.78\n"),
            Some(Duration::new(12, 340_000_000))
        );
        assert_eq!(parse_uptime("7 1"), Some(Duration::from_secs(7)));
        assert_eq!(parse_uptime("x"), None);
        assert_eq!(parse_uptime(""), None);
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
        assert_eq!(secs(Duration::from_micros(1_234_567)), "1.234 s");
    }
}
