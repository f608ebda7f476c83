//! A virtual machine on the serial console: boot, wait for markers, type, cut the power.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one boot may take under TCG before the test gives up (no timing assertion: a
/// bound against hangs).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

/// Console lines after which nothing more will come.
const FATAL: [&str; 3] = [
    "boot failed: system halted",
    "Kernel panic",
    "end Kernel panic",
];

/// A disk attached to the VM.
#[derive(Clone, Debug)]
pub enum Disk {
    /// A raw image on virtio-blk (a USB stick stand-in): `/dev/vda`, ...
    Virtio(PathBuf),
    /// An ISO image as an IDE CD-ROM: `/dev/sr0`.
    Cdrom(PathBuf),
}

/// A running VM.
pub struct Vm {
    child: Child,
    stdin: Option<ChildStdin>,
    log: Arc<Mutex<Vec<u8>>>,
    echo: Arc<std::sync::atomic::AtomicBool>,
    cursor: usize,
    deadline: Instant,
    /// Name used for the saved serial log.
    pub name: String,
    log_dir: PathBuf,
}

impl Vm {
    /// Boot `kernel` + `initramfs` with `cmdline` (the console is added) and the disks.
    pub fn boot(
        name: &str,
        kernel: &Path,
        initramfs: &Path,
        cmdline: &str,
        disks: &[Disk],
        extra: &[&str],
    ) -> Vm {
        let env = crate::Env::get();
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args([
            "-accel",
            "tcg",
            "-m",
            "1024",
            "-smp",
            "1",
            "-display",
            "none",
            "-monitor",
            "none",
            "-serial",
            "stdio",
            "-no-reboot",
        ])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initramfs)
        .arg("-append")
        .arg(format!("console=ttyS0 {cmdline}"));
        for d in disks {
            match d {
                Disk::Virtio(p) => cmd
                    .arg("-drive")
                    .arg(format!("file={},format=raw,if=virtio", p.display())),
                Disk::Cdrom(p) => cmd.arg("-drive").arg(format!(
                    "file={},format=raw,if=ide,media=cdrom,readonly=on",
                    p.display()
                )),
            };
        }
        cmd.args(extra);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .expect("qemu-system-x86_64 (make deps installs qemu-system-x86)");
        let log = Arc::new(Mutex::new(Vec::new()));
        let echo = Arc::new(std::sync::atomic::AtomicBool::new(false));
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
            let (log, echo) = (log.clone(), echo.clone());
            std::thread::spawn(move || {
                let mut s = stream;
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    log.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&buf[..n]);
                    if echo.load(std::sync::atomic::Ordering::Relaxed) {
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
            echo,
            cursor: 0,
            deadline: Instant::now() + BOOT_TIMEOUT,
            name: name.to_string(),
            log_dir: env.assets.clone(),
        }
    }

    /// Copy the console to this process's stdout as it arrives (the demo).
    pub fn set_echo(&self, on: bool) {
        self.echo.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// The whole serial log so far (carriage returns dropped: the serial line sends CRLF).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap_or_else(|e| e.into_inner()))
            .replace('\r', "")
    }

    /// Save the log and fail the test with its tail.
    pub fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(200));
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
        panic!("{why}\nserial log saved to {}\n----- serial console (tail) -----\n{tail}\n---------------------------------", path.display());
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Wait until `marker` appears after the previous expectation.
    pub fn expect(&mut self, marker: &str) {
        let _ = self.expect_one(&[marker]);
    }

    /// Wait until one of `markers` appears; returns its index. A halted or panicking machine
    /// fails at once instead of running into the timeout.
    pub fn expect_one(&mut self, markers: &[&str]) -> usize {
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
            let hit = markers
                .iter()
                .enumerate()
                .filter_map(|(i, m)| rest.find(m).map(|p| (p, i, m.len())))
                .min();
            if let Some((p, i, len)) = hit {
                self.cursor += p + len;
                return i;
            }
            if self.exited() {
                std::thread::sleep(Duration::from_millis(300));
                let text = self.text();
                let rest = text.get(self.cursor..).unwrap_or("");
                if let Some((p, i, len)) = markers
                    .iter()
                    .enumerate()
                    .filter_map(|(i, m)| rest.find(m).map(|p| (p, i, m.len())))
                    .min()
                {
                    self.cursor += p + len;
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

    /// Assert that `marker` did not appear anywhere so far.
    pub fn refute(&mut self, marker: &str) {
        if self.text().contains(marker) {
            self.fail(&format!("unexpected {marker:?} on the console"));
        }
    }

    /// Type a line on the serial console.
    pub fn send(&mut self, line: &str) {
        if let Some(s) = self.stdin.as_mut() {
            let _ = s.write_all(line.as_bytes());
            let _ = s.write_all(b"\n");
            let _ = s.flush();
        }
    }

    /// Wait for the VM to power off by itself.
    pub fn wait_poweroff(&mut self) {
        loop {
            if self.exited() {
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Text between the last `boot timeline` header and the end of its block.
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
    }
}
