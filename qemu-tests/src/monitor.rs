//! qemu's human monitor (HMP) on a unix socket: one command at a time, its output back.
//!
//! HMP prints a banner and the prompt `(qemu) ` after every command; a command's output is what
//! comes between the echoed command line and the next prompt.
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

const PROMPT: &str = "(qemu) ";

/// A connected monitor.
pub struct Monitor {
    stream: UnixStream,
}

impl Monitor {
    /// Connects to the socket (qemu creates it shortly after it starts) and reads the banner.
    pub fn connect(path: &Path, timeout: Duration) -> io::Result<Monitor> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        stream.set_read_timeout(Some(timeout))?;
        let mut m = Monitor { stream };
        m.read_to_prompt()?;
        Ok(m)
    }

    fn read_to_prompt(&mut self) -> io::Result<String> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "monitor closed",
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.ends_with(PROMPT.as_bytes()) {
                return Ok(String::from_utf8_lossy(&buf[..buf.len() - PROMPT.len()]).into_owned());
            }
        }
    }

    /// Runs `command`; returns its output without the echo, the prompt and terminal escapes.
    pub fn command(&mut self, command: &str) -> io::Result<String> {
        self.stream.write_all(command.as_bytes())?;
        self.stream.write_all(b"\n")?;
        match self.read_to_prompt() {
            Ok(raw) => Ok(clean_output(&raw, command)),
            // `quit` ends qemu, and the monitor with it.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && command.trim() == "quit" => {
                Ok(String::new())
            }
            Err(e) => Err(e),
        }
    }
}

/// HMP's readline echoes the command with terminal escapes; keep the lines after the echo.
fn clean_output(raw: &str, command: &str) -> String {
    let text = strip_escapes(raw).replace('\r', "");
    let out: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim().is_empty() || l.contains(command))
        .collect();
    out.join("\n").trim_end().to_string()
}

fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_without_echo_and_escapes() {
        let raw = "info status\r\n\u{1b}[K\u{1b}[Dinfo status\r\nVM status: paused\r\n";
        assert_eq!(clean_output(raw, "info status"), "VM status: paused");
        assert_eq!(clean_output("cont\r\n", "cont"), "");
    }
}
