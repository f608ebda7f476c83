//! A running VM on its serial console: boot, wait for markers, type, cut the power, talk to the
//! monitor. A failed expectation kills qemu, saves the whole serial log and fails the test with
//! the tail of the console, the init's boot timeline (if it printed one) and the run's own
//! timeline (when each marker appeared), so a failure explains itself without a rerun.
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::image::Image;
use crate::machine::{qemu_args, Firmware, Opts, RunFiles};
use crate::monitor::Monitor;

/// Console lines after which nothing more will come.
const FATAL: [&str; 3] = [
    "boot failed: system halted",
    "Kernel panic",
    "end Kernel panic",
];

/// A running VM.
pub struct Vm {
    child: Child,
    stdin: Option<ChildStdin>,
    log: Arc<Mutex<Vec<u8>>>,
    /// When the console's bytes arrived: `(log length after a read, when)`, in order.
    arrivals: Arc<Mutex<Vec<(usize, Instant)>>>,
    echo: Arc<AtomicBool>,
    cursor: usize,
    started: Instant,
    deadline: Instant,
    /// What happened when (`seen "marker"`), for the failure report.
    events: Vec<(Duration, String)>,
    monitor: Option<Monitor>,
    run_files: RunFiles,
    _run_dir: tempfile::TempDir,
    /// Name used for the saved serial log.
    pub name: String,
    log_dir: PathBuf,
}

/// Where logs go when [`Opts::log_dir`] is not set.
fn default_log_dir() -> PathBuf {
    match std::env::var_os("PROJECT_OUT") {
        Some(out) => PathBuf::from(out).join("qemu-logs"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/qemu-logs"),
    }
}

impl Vm {
    /// Starts qemu (TCG) with `image` under `opts`. Panics when qemu cannot be started.
    pub fn boot(image: &Image, opts: Opts) -> Vm {
        let run_dir = tempfile::Builder::new()
            .prefix("qemu-vm-")
            .tempdir()
            .expect("a temporary directory for the VM");
        let run_files = RunFiles::in_dir(run_dir.path());
        if let Firmware::Ovmf { vars, .. } = &opts.firmware {
            std::fs::copy(vars, &run_files.ovmf_vars)
                .unwrap_or_else(|e| panic!("{}: {e} (make deps installs ovmf)", vars.display()));
        }
        let log_dir = opts.log_dir.clone().unwrap_or_else(default_log_dir);
        let _ = std::fs::create_dir_all(&log_dir);
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(qemu_args(image, &opts, &run_files))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Power-on: when qemu is started ([`Vm::seen_at`] counts from here).
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .expect("qemu-system-x86_64 (make deps installs qemu-system-x86)");
        let log = Arc::new(Mutex::new(Vec::new()));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let echo = Arc::new(AtomicBool::new(opts.echo));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let (log, arrivals, echo) = (log.clone(), arrivals.clone(), echo.clone());
            std::thread::spawn(move || {
                let mut s = stream;
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let now = Instant::now();
                    let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                    l.extend_from_slice(&buf[..n]);
                    arrivals
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((l.len(), now));
                    drop(l);
                    if echo.load(Ordering::Relaxed) {
                        let mut o = std::io::stdout().lock();
                        let _ = o.write_all(&buf[..n]);
                        let _ = o.flush();
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        Vm {
            child,
            stdin,
            log,
            arrivals,
            echo,
            cursor: 0,
            started,
            deadline: started + opts.timeout,
            events: vec![(Duration::ZERO, "qemu started".into())],
            monitor: None,
            run_files,
            _run_dir: run_dir,
            name: opts.name,
            log_dir,
        }
    }

    /// How long after qemu started the first `marker` on the console had fully arrived (to the
    /// read that brought its last byte, not to the next poll of [`Vm::expect`]): `make bench`'s
    /// power-on figures. `None` while it has not appeared.
    pub fn seen_at(&self, marker: &str) -> Option<Duration> {
        let end = {
            let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            let m = marker.as_bytes();
            log.windows(m.len()).position(|w| w == m)? + m.len()
        };
        let arrivals = self.arrivals.lock().unwrap_or_else(|e| e.into_inner());
        // The log only grows and a read appends to it under the lock before its record is
        // pushed, so the first record reaching `end` is the read that completed the marker.
        arrivals
            .iter()
            .find(|(len, _)| *len >= end)
            .map(|(_, at)| at.saturating_duration_since(self.started))
    }

    /// The console's lines, each with when its last byte arrived after qemu started (the
    /// `.timed.log` beside the serial log): where a boot spends its time between the init's
    /// own timeline rows (carriage returns dropped; an unfinished last line included).
    pub fn timed_lines(&self) -> Vec<(Duration, String)> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let arrivals = self
            .arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut out = Vec::new();
        let (mut start, mut a) = (0usize, 0usize);
        for (i, _) in log.iter().enumerate().filter(|(_, &b)| b == b'\n') {
            // The first read that brought byte i.
            while a < arrivals.len() && arrivals[a].0 <= i {
                a += 1;
            }
            let at = arrivals.get(a).map_or(Duration::ZERO, |(_, t)| {
                t.saturating_duration_since(self.started)
            });
            let line = String::from_utf8_lossy(&log[start..i]).replace('\r', "");
            out.push((at, line));
            start = i + 1;
        }
        if start < log.len() {
            let at = arrivals.last().map_or(Duration::ZERO, |(_, t)| {
                t.saturating_duration_since(self.started)
            });
            out.push((at, String::from_utf8_lossy(&log[start..]).replace('\r', "")));
        }
        out
    }

    /// Copy the console to this process's stdout as it arrives (the demo).
    pub fn set_echo(&self, on: bool) {
        self.echo.store(on, Ordering::Relaxed);
    }

    /// The whole serial log so far (carriage returns dropped: the serial line sends CRLF).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap_or_else(|e| e.into_inner()))
            .replace('\r', "")
    }

    fn event(&mut self, what: String) {
        self.events.push((self.started.elapsed(), what));
    }

    /// The run's own timeline: when qemu started and when each expectation was met.
    pub fn events(&self) -> String {
        self.events
            .iter()
            .map(|(t, what)| format!("  {:>7.1} s  {what}\n", t.as_secs_f64()))
            .collect()
    }

    /// Save the log and fail the test with its tail and both timelines.
    pub fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(200));
        self.event(format!("failed: {why}"));
        let log = self.text();
        let path = self.log_dir.join(format!("{}.serial.log", self.name));
        let _ = std::fs::write(&path, &log);
        let tail: String = log
            .chars()
            .rev()
            .take(6000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let timeline = self
            .timeline()
            .unwrap_or_else(|| "(the init printed no boot timeline)".into());
        panic!(
            "{}: {why}\nserial log saved to {}\n----- serial console (tail) -----\n{tail}\n\
             ----- init boot timeline -----\n{timeline}\n----- this run -----\n{}\
             ---------------------------------",
            self.name,
            path.display(),
            self.events()
        );
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Wait until `marker` appears after the previous expectation (bounded by the run's timeout).
    pub fn expect(&mut self, marker: &str) {
        let _ = self.expect_one(&[marker]);
    }

    /// Wait at most `limit` (and never past the run's timeout) for `marker`. A bound for a step
    /// that must not hang, not a timing assertion.
    pub fn expect_within(&mut self, marker: &str, limit: Duration) {
        let saved = self.deadline;
        self.deadline = self.deadline.min(Instant::now() + limit);
        let _ = self.expect_one(&[marker]);
        self.deadline = saved;
    }

    /// Wait until one of `markers` appears; returns its index. A halted or panicking machine
    /// fails at once instead of running into the timeout.
    pub fn expect_one(&mut self, markers: &[&str]) -> usize {
        let find = |text: &str, cursor: usize| {
            let rest = text.get(cursor..).unwrap_or("");
            markers
                .iter()
                .enumerate()
                .filter_map(|(i, m)| rest.find(m).map(|p| (p, i, m.len())))
                .min()
        };
        loop {
            let text = self.text();
            let rest = text.get(self.cursor..).unwrap_or("");
            for fatal in FATAL {
                if rest.contains(fatal)
                    && !markers
                        .iter()
                        .any(|m| m.contains(fatal) || fatal.contains(m))
                {
                    self.fail(&format!(
                        "{fatal:?} on the console while waiting for {markers:?}"
                    ));
                }
            }
            if let Some((p, i, len)) = find(&text, self.cursor) {
                self.cursor += p + len;
                self.event(format!("seen {:?}", markers[i]));
                return i;
            }
            if self.exited() {
                // The reader threads may still be draining.
                std::thread::sleep(Duration::from_millis(300));
                let text = self.text();
                if let Some((p, i, len)) = find(&text, self.cursor) {
                    self.cursor += p + len;
                    self.event(format!("seen {:?}", markers[i]));
                    return i;
                }
                self.fail(&format!("qemu exited before {markers:?} appeared"));
            }
            if Instant::now() > self.deadline {
                self.fail(&format!("timed out waiting for {markers:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Fail if `marker` appeared anywhere so far.
    pub fn refute(&mut self, marker: &str) {
        if self.text().contains(marker) {
            self.fail(&format!("unexpected {marker:?} on the console"));
        }
    }

    /// Type a line on the serial console (a newline is added).
    pub fn send(&mut self, line: &str) {
        self.event(format!("sent {line:?}"));
        if let Some(s) = self.stdin.as_mut() {
            let _ = s.write_all(line.as_bytes());
            let _ = s.write_all(b"\n");
            let _ = s.flush();
        }
    }

    /// Wait for the VM to power off (or reboot, which ends qemu under `-no-reboot`) by itself.
    pub fn wait_poweroff(&mut self) {
        loop {
            if self.exited() {
                self.event("powered off".into());
                return;
            }
            if Instant::now() > self.deadline {
                self.fail("timed out waiting for power off");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Cut the power (SIGKILL qemu): what the guest wrote to its disks stays, its page cache is
    /// lost, as after a real power cut.
    pub fn power_cut(&mut self) {
        self.event("power cut".into());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// One command on qemu's human monitor (needs [`Opts::monitor`]); returns its output
    /// (`info status`, `device_add e1000,netdev=hot,id=nic1`, `cont`, ...).
    pub fn monitor(&mut self, command: &str) -> String {
        self.event(format!("monitor {command:?}"));
        if self.monitor.is_none() {
            let path = self.run_files.monitor.clone();
            match Monitor::connect(&path, Duration::from_secs(30)) {
                Ok(m) => self.monitor = Some(m),
                Err(e) => self.fail(&format!(
                    "monitor {}: {e} (Opts::monitor must be set)",
                    path.display()
                )),
            }
        }
        let result = self.monitor.as_mut().map(|m| m.command(command));
        match result {
            Some(Ok(out)) => out,
            Some(Err(e)) => self.fail(&format!("monitor command {command:?}: {e}")),
            None => unreachable!("connected above"),
        }
    }

    /// Text between the last `boot timeline` header the init printed and the end of its block.
    pub fn timeline(&self) -> Option<String> {
        let t = self.text();
        // The init's own block starts a line (a scenario may echo a copy with a prefix).
        let i = t
            .rfind("\nboot timeline")
            .map(|i| i + 1)
            .or_else(|| t.starts_with("boot timeline").then_some(0))?;
        // The header, then the indented phase lines (kernel messages may follow on the console).
        let mut lines = t[i..].lines();
        let mut block: Vec<&str> = lines.next().into_iter().collect();
        block.extend(lines.take_while(|l| l.starts_with("  ")));
        Some(block.join("\n"))
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            return;
        }
        // A passing run keeps its log too: the timelines are worth reading afterwards.
        let _ = std::fs::write(
            self.log_dir.join(format!("{}.serial.log", self.name)),
            self.text(),
        );
        let timed: String = self
            .timed_lines()
            .iter()
            .map(|(t, l)| format!("{:8.3} {l}\n", t.as_secs_f64()))
            .collect();
        let _ = std::fs::write(self.log_dir.join(format!("{}.timed.log", self.name)), timed);
    }
}
