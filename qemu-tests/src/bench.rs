//! The figures of `make bench`'s boot section (the `bootbench` binary): the init's boot timeline
//! parsed from the console, samples of named figures over several boots, their medians and the
//! table with ratios to a floor. Pure: text in, text out.
use std::fmt::Write as _;
use std::time::Duration;

/// `1.234 s` (as the init's timeline prints it) -> 1.234 s.
pub fn parse_secs(text: &str) -> Option<Duration> {
    let v = text.trim().strip_suffix(" s")?.trim();
    let (s, frac) = v.split_once('.').unwrap_or((v, "0"));
    let secs: u64 = s.parse().ok()?;
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = format!("{frac:0<9}").parse().ok()?;
    Some(Duration::new(secs, nanos))
}

/// The rows of an init boot timeline block (`Vm::timeline`): `(label, duration)` in order,
/// without the header and the `packages installed:` line. A row is two spaces, the label
/// padded to 28 columns, the duration, optionally two spaces and a note.
pub fn parse_timeline(block: &str) -> Vec<(String, Duration)> {
    block
        .lines()
        .filter_map(|l| {
            let row = l.strip_prefix("  ")?;
            let label = row.get(..28)?.trim_end();
            let rest = row.get(28..)?.trim_start();
            let value = rest.split("  ").next()?;
            (!label.is_empty())
                .then(|| parse_secs(value).map(|d| (label.to_string(), d)))
                .flatten()
        })
        .collect()
}

/// The kernel's time stamp (`[    1.451865] ...`) of the first console line holding `needle`.
pub fn kernel_stamp(console: &str, needle: &str) -> Option<Duration> {
    let line = console.lines().find(|l| l.contains(needle))?;
    let inside = line.trim_start().strip_prefix('[')?.split(']').next()?;
    parse_uptime(inside)
}

/// How long the kernel took to unpack the initramfs: from `Trying to unpack rootfs image as
/// initramfs...` to `Freeing initrd memory` (both printed with time stamps on the console).
pub fn kernel_unpack(console: &str) -> Option<Duration> {
    let start = kernel_stamp(console, "Trying to unpack rootfs image as initramfs")?;
    let end = kernel_stamp(console, "Freeing initrd memory")?;
    end.checked_sub(start)
}

/// Seconds from `/proc/uptime`'s first field or a `uptime=` value (`12.34`).
pub fn parse_uptime(text: &str) -> Option<Duration> {
    parse_secs(&format!("{} s", text.trim()))
}

/// OpenRC's steps, from the console's lines with their arrival times (`Vm::timed_lines`):
/// `(label, duration)` in order, from the line `OpenRC ... is starting up` to the first line
/// holding `until` (the default runlevel's marker). A step is a ` * ` line: `ebegin`'s `LABEL ...`
/// ends with the arrival of the line that completes it (`[ ok ]` or `[ !! ]`: the same line, or a
/// later one when the service printed in between), `einfo`'s line with its own arrival. Each step
/// starts where the one before it ended (the first at OpenRC's banner), so what a service does
/// before its first message counts in its step, and the durations add up to OpenRC start ->
/// `until`'s line, less what follows the last step. Kernel messages in between belong to the step
/// they interrupt. The label is the text after `* ` up to ` ...`, trimmed.
pub fn openrc_steps(lines: &[(Duration, String)], until: &str) -> Vec<(String, Duration)> {
    let Some(start) = lines
        .iter()
        .position(|(_, l)| l.contains("OpenRC") && l.contains("is starting up"))
    else {
        return Vec::new();
    };
    let end = lines[start..]
        .iter()
        .position(|(_, l)| l.contains(until))
        .map_or(lines.len(), |i| start + i);
    let step_label = |l: &str| -> Option<String> {
        let text = l.trim_start().strip_prefix("* ")?;
        let label = text.split(" ...").next().unwrap_or(text).trim();
        (!label.is_empty()).then(|| label.to_string())
    };
    let completes = |l: &str| l.contains("[ ok ]") || l.contains("[ !! ]");
    let mut steps = Vec::new();
    let mut since = lines[start].0;
    let mut i = start + 1;
    while i < end {
        let (at, line) = &lines[i];
        let Some(label) = step_label(line) else {
            i += 1;
            continue;
        };
        let mut done = (i, *at);
        if line.contains(" ...") && !completes(line) {
            // Its completion, unless another step or the end comes first; then its last line.
            let mut j = i + 1;
            while j < end && step_label(&lines[j].1).is_none() {
                done = (j, lines[j].0);
                if completes(&lines[j].1) {
                    break;
                }
                j += 1;
            }
        }
        steps.push((label, done.1.saturating_sub(since)));
        since = done.1;
        i = done.0 + 1;
    }
    steps
}

/// The median (the mean of the middle two for an even count); `None` without samples.
pub fn median(samples: &[Duration]) -> Option<Duration> {
    let mut v = samples.to_vec();
    v.sort();
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2),
    }
}

/// Samples of named figures, the names in the order they were first seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Samples {
    figures: Vec<(String, Vec<Duration>)>,
}

impl Samples {
    /// Adds one sample of `name`.
    pub fn add(&mut self, name: &str, d: Duration) {
        match self.figures.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => v.push(d),
            None => self.figures.push((name.to_string(), vec![d])),
        }
    }

    /// The names, first seen first.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.figures.iter().map(|(n, _)| n.as_str())
    }

    /// The median of `name`.
    pub fn median(&self, name: &str) -> Option<Duration> {
        self.figures
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| median(v))
    }

    /// How many samples of `name`.
    pub fn count(&self, name: &str) -> usize {
        self.figures
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| v.len())
    }
}

/// `0.812 s`, or `-` for a missing figure.
pub fn cell(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{:.3} s", d.as_secs_f64()))
}

/// `1.23x` (`a / b`), or `-`.
pub fn ratio(a: Option<Duration>, b: Option<Duration>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if !b.is_zero() => format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64()),
        _ => "-".into(),
    }
}

/// One column per configuration (`-smp 1`, `-smp 2`): the median of every figure any column
/// has, in first-seen order, then the ratio rows for `ratio_to` (`(figure, floor per column)`).
pub fn table(
    columns: &[(String, &Samples)],
    ratio_to: &[(&str, Vec<Option<Duration>>)],
    floor_name: &str,
) -> String {
    let mut names: Vec<&str> = Vec::new();
    for (_, s) in columns {
        for n in s.names() {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    let mut out = String::new();
    let _ = write!(out, "  {:<56}", "median of");
    for (c, _) in columns {
        let _ = write!(out, " {c:>10}");
    }
    out.push('\n');
    for n in &names {
        let _ = write!(out, "  {n:<56}");
        for (_, s) in columns {
            let _ = write!(out, " {:>10}", cell(s.median(n)));
        }
        out.push('\n');
    }
    for (figure, floors) in ratio_to {
        let _ = write!(
            out,
            "  {:<56}",
            format!("{figure}: / {floor_name}")
                .chars()
                .take(56)
                .collect::<String>()
        );
        for (i, (_, s)) in columns.iter().enumerate() {
            let floor = floors.get(i).copied().flatten();
            let _ = write!(out, " {:>10}", ratio(s.median(figure), floor));
        }
        out.push('\n');
    }
    out
}

/// Seconds with three decimals and a sign (`+1.220`, `-0.105`).
fn signed_secs(a: Duration, b: Duration) -> String {
    if a >= b {
        format!("+{:.3}", (a - b).as_secs_f64())
    } else {
        format!("-{:.3}", (b - a).as_secs_f64())
    }
}

/// The steps whose medians in `case` and in its `floor` differ by `min` or more in any column
/// (`(column, case's samples, floor's samples)`), in the order the case has them, then those
/// only the floor has; each cell `case / floor (difference)` in seconds, a step missing on one
/// side counting 0 there (`-`). `total`, when one of the figures, is the last row, always.
pub fn step_differences(
    columns: &[(String, &Samples, &Samples)],
    min: Duration,
    total: &str,
) -> String {
    let mut names: Vec<&str> = Vec::new();
    for (_, case, floor) in columns {
        for n in case.names().chain(floor.names()) {
            if n != total && !names.contains(&n) {
                names.push(n);
            }
        }
    }
    let row = |out: &mut String, n: &str| {
        let _ = write!(out, "  {:<44}", n.chars().take(44).collect::<String>());
        for (_, case, floor) in columns {
            let (a, b) = (case.median(n), floor.median(n));
            let (a0, b0) = (a.unwrap_or_default(), b.unwrap_or_default());
            let secs =
                |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.3}", d.as_secs_f64()));
            let _ = write!(
                out,
                " {:>26}",
                format!("{} / {} ({})", secs(a), secs(b), signed_secs(a0, b0))
            );
        }
        out.push('\n');
    };
    let mut out = String::new();
    let _ = write!(out, "  {:<44}", "step (seconds)");
    for (c, _, _) in columns {
        let _ = write!(out, " {c:>26}");
    }
    out.push('\n');
    for n in names {
        let apart = columns.iter().any(|(_, case, floor)| {
            let (a, b) = (
                case.median(n).unwrap_or_default(),
                floor.median(n).unwrap_or_default(),
            );
            a.abs_diff(b) >= min
        });
        if apart {
            row(&mut out, n);
        }
    }
    if columns
        .iter()
        .any(|(_, case, floor)| case.count(total) > 0 || floor.count(total) > 0)
    {
        row(&mut out, total);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn seconds_and_uptime() {
        assert_eq!(parse_secs("1.234 s"), Some(ms(1234)));
        assert_eq!(parse_secs(" 0.5 s"), Some(ms(500)));
        assert_eq!(parse_secs("12 s"), Some(Duration::from_secs(12)));
        assert_eq!(parse_secs("1.2"), None);
        assert_eq!(parse_secs("x.1 s"), None);
        assert_eq!(parse_secs("1.-2 s"), None);
        assert_eq!(parse_uptime("3.45"), Some(ms(3450)));
        assert_eq!(parse_uptime("3.45 junk"), None);
    }

    #[test]
    fn timeline_rows_as_the_init_prints_them() {
        let block = "boot timeline (CLOCK_BOOTTIME):\n\
             \x20 kernel start -> init           1.150 s\n\
             \x20 early setup                    0.010 s\n\
             \x20 boot drivers                   0.090 s  4 modules\n\
             \x20 media discovery                5.000 s  2 device(s), 1 medium(s)\n\
             \x20 switch_root                    0.000 s  exec /sbin/init\n\
             \x20 packages installed: 23 (12.3 MiB)\n\
             \x20 init total                     5.800 s\n\
             \x20 kernel start -> now            7.000 s\n";
        let rows = parse_timeline(block);
        let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "kernel start -> init",
                "early setup",
                "boot drivers",
                "media discovery",
                "switch_root",
                "init total",
                "kernel start -> now"
            ]
        );
        assert_eq!(rows[2].1, ms(90));
        assert_eq!(rows[3].1, ms(5000));
        assert_eq!(rows[6].1, ms(7000));
    }

    #[test]
    fn kernel_unpack_from_time_stamps() {
        let console = "[    0.000000] Linux version 6.1\n\
             [    1.451865] Trying to unpack rootfs image as initramfs...\n\
             [    1.500000] other\n\
             [    2.075216] Freeing initrd memory: 6736K\n";
        assert_eq!(kernel_stamp(console, "other"), Some(ms(1500)));
        assert_eq!(kernel_unpack(console), Some(Duration::from_micros(623_351)));
        assert_eq!(kernel_unpack("[    1.0] Freeing initrd memory"), None);
        assert_eq!(
            kernel_stamp("no stamp Freeing initrd memory", "Freeing"),
            None
        );
    }

    fn timed(lines: &[(u64, &str)]) -> Vec<(Duration, String)> {
        lines.iter().map(|(t, l)| (ms(*t), l.to_string())).collect()
    }

    #[test]
    fn openrc_steps_as_the_console_shows_them() {
        let lines = timed(&[
            (900, "[    1.8] Run /init as init process"),
            (
                1000,
                "   OpenRC 0.52.1 is starting up Linux 6.1.0-57-amd64 (x86_64)",
            ),
            (1100, " * /proc is already mounted"),
            (1500, " * Caching service dependencies ... [ ok ]"),
            (
                1700,
                " * Starting busybox mdev .../lib/rc/sh/openrc-run.sh: line 15: can't create",
            ),
            (1710, " [ !! ]"),
            (3000, " * Scanning hardware for mdev ... [ ok ]"),
            (
                3100,
                " * Loading modules ...modprobe: can't change directory",
            ),
            (3150, "[    2.9] random: crng init done"),
            (3200, "modprobe: can't change directory"),
            (3300, " [ ok ]"),
            (3600, " * Checking local filesystems  ... [ ok ]"),
            (3700, " * Starting networking ... *   lo ... [ ok ]"),
            (3800, " *   eth0 ...ip: ioctl 0x8913 failed"),
            (3900, " * Starting syslog ..."),
            (4000, "BOOTBENCH-DEFAULT-RUNLEVEL uptime=3.1"),
            (4100, " * after the marker ... [ ok ]"),
        ]);
        let steps = openrc_steps(&lines, "BOOTBENCH-DEFAULT-RUNLEVEL");
        let want: Vec<(&str, u64)> = vec![
            ("/proc is already mounted", 100),
            ("Caching service dependencies", 400),
            ("Starting busybox mdev", 210),
            ("Scanning hardware for mdev", 1290),
            ("Loading modules", 300),
            ("Checking local filesystems", 300),
            ("Starting networking", 100),
            // Never completed: it ends with its own line when the next step begins.
            ("eth0", 100),
            // Never completed before the marker: its last line is its own.
            ("Starting syslog", 100),
        ];
        let got: Vec<(&str, u64)> = steps
            .iter()
            .map(|(l, d)| (l.as_str(), d.as_millis() as u64))
            .collect();
        assert_eq!(got, want);
        assert!(openrc_steps(&lines[..1], "BOOTBENCH").is_empty());
        // Without the marker, up to the last line.
        assert_eq!(
            openrc_steps(&lines, "never printed")
                .last()
                .map(|(l, _)| l.as_str()),
            Some("after the marker")
        );
    }

    #[test]
    fn steps_apart_from_the_floor() {
        let (mut a1, mut f1, mut a2, mut f2) = Default::default();
        let add = |s: &mut Samples, n: &str, v: u64| s.add(n, ms(v));
        add(&mut a1, "Caching service dependencies", 1150);
        add(&mut f1, "Caching service dependencies", 1110);
        add(&mut a2, "Caching service dependencies", 1100);
        add(&mut f2, "Caching service dependencies", 1120);
        add(&mut a1, "Scanning hardware for mdev", 1600);
        add(&mut f1, "Scanning hardware for mdev", 380);
        add(&mut a2, "Scanning hardware for mdev", 1670);
        add(&mut f2, "Scanning hardware for mdev", 400);
        // Only on one side, apart in one column only.
        add(&mut f1, "Mounting /dev/shm", 20);
        add(&mut f2, "Mounting /dev/shm", 105);
        for (s, v) in [
            (&mut a1, 11760),
            (&mut f1, 8860),
            (&mut a2, 11600),
            (&mut f2, 9110),
        ] {
            add(s, "OpenRC total", v);
        }
        let t = step_differences(
            &[("-smp 1".into(), &a1, &f1), ("-smp 2".into(), &a2, &f2)],
            ms(50),
            "OpenRC total",
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(
            lines[0].contains("-smp 1") && lines[0].contains("-smp 2"),
            "{t}"
        );
        assert!(lines[1].starts_with("  Scanning hardware for mdev"), "{t}");
        assert!(lines[1].contains("1.600 / 0.380 (+1.220)"), "{t}");
        assert!(lines[1].contains("1.670 / 0.400 (+1.270)"), "{t}");
        assert!(lines[2].contains("- / 0.020 (-0.020)"), "{t}");
        assert!(lines[2].contains("- / 0.105 (-0.105)"), "{t}");
        assert!(lines[3].starts_with("  OpenRC total"), "{t}");
        assert!(lines[3].contains("11.760 / 8.860 (+2.900)"), "{t}");
    }

    #[test]
    fn medians_odd_even_empty() {
        assert_eq!(median(&[ms(3), ms(1), ms(2)]), Some(ms(2)));
        assert_eq!(
            median(&[ms(4), ms(1), ms(2), ms(3)]),
            Some(Duration::from_micros(2500))
        );
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn table_with_ratios() {
        let mut a = Samples::default();
        let mut b = Samples::default();
        for d in [ms(1000), ms(1200), ms(1100)] {
            a.add("init total", d);
        }
        a.add("power-on -> default runlevel", ms(9000));
        b.add("power-on -> default runlevel", ms(6000));
        b.add("only here", ms(1));
        assert_eq!(a.count("init total"), 3);
        let t = table(
            &[("-smp 1".into(), &a), ("-smp 2".into(), &b)],
            &[(
                "power-on -> default runlevel",
                vec![Some(ms(6000)), Some(ms(6000))],
            )],
            "stand-in",
        );
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].contains("-smp 1") && lines[0].contains("-smp 2"),
            "{t}"
        );
        assert!(
            lines[1].starts_with("  init total")
                && lines[1].contains("1.100 s")
                && lines[1].trim_end().ends_with('-'),
            "{t}"
        );
        assert!(
            lines[2].contains("9.000 s") && lines[2].contains("6.000 s"),
            "{t}"
        );
        assert!(lines[3].starts_with("  only here"), "{t}");
        assert!(
            lines[4].contains("/ stand-in")
                && lines[4].contains("1.50x")
                && lines[4].contains("1.00x"),
            "{t}"
        );
    }
}
