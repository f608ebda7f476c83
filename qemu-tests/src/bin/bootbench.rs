//! `make bench`, boot section: boots alpine-base and the jumphost appliance several times each
//! under TCG with `-smp 1` and `-smp 2` (the same medium), beside a stand-in that installs
//! nothing (the same kernel, an initramfs that is an already-installed alpine-base root and a
//! trivial `/init`): the floor. Prints the medians of every phase of the init's timeline, of
//! kernel start -> `/sbin/init`, of kernel start and power-on -> OpenRC's default runlevel, and
//! their ratios to the floor, then OpenRC's steps whose medians are apart from the floor's (where
//! the rest of the difference goes). The default runlevel is a marker printed by the last service
//! of the default runlevel, which every medium's overlay carries (and the stand-in's root).
//!
//! alpine-base boots the initramfs mkinitfs makes by default (default features and zstd level),
//! the jumphost and the netboot case that image's features plus `network` (their NIC drivers).
//! The netboot case boots alpine-base from the network instead (the same overlay: `ip=dhcp`, the
//! repository and the signed overlay from a loopback HTTP server), printed beside the medium
//! boot.
//!
//! `--levels 1,3,...` also measures the initramfs's zstd level: for each level, the size of the
//! default image and of the image with `network`, and the kernel's unpack of the latter (kernel
//! start -> `/init`, the timeline's first row) booting the alpine-base medium.
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use qemu_tests::assets::run;
use qemu_tests::bench::{self, Samples};
use qemu_tests::http::Server;
use qemu_tests::{
    Disk, Env, Image, InitramfsRecipe, MediumFormat, MediumRecipe, Net, Opts, Overlay, UkiRecipe,
    Vm,
};
use sha2::{Digest, Sha256};

/// Printed by the overlay's last default-runlevel service (uptime when it ran).
const MARK_DEFAULT: &str = "BOOTBENCH-DEFAULT-RUNLEVEL uptime=";
/// Printed after the timeline copy: the end of a run.
const MARK_END: &str = "BOOTBENCH-END";
/// Printed by the stand-in's `/init` when it starts and before it execs `/sbin/init`.
const MARK_STANDIN_INIT: &str = "BOOTBENCH-STANDIN init uptime=";
const MARK_STANDIN_EXEC: &str = "BOOTBENCH-STANDIN exec uptime=";

/// The script of the overlay's last service: the marker, then the init's timeline file.
const MARKER_SCRIPT: &str = "read up rest < /proc/uptime\n\
echo \"BOOTBENCH-DEFAULT-RUNLEVEL uptime=$up\"\n\
cat /var/log/boot-timeline.txt 2>/dev/null\n\
echo BOOTBENCH-END";

/// The stand-in's `/init`: what the kernel needs mounted for OpenRC, then `/sbin/init`.
const STANDIN_INIT: &str = "#!/bin/sh\n\
read up rest < /proc/uptime 2>/dev/null || { mount -t proc proc /proc; read up rest < /proc/uptime; }\n\
echo \"BOOTBENCH-STANDIN init uptime=$up\"\n\
mountpoint -q /proc || mount -t proc proc /proc\n\
mount -t sysfs sysfs /sys\n\
mount -t devtmpfs devtmpfs /dev\n\
read up rest < /proc/uptime\n\
echo \"BOOTBENCH-STANDIN exec uptime=$up\"\n\
exec /sbin/init\n";

/// Bump when the stand-in's recipe changes (part of its cache key).
const STANDIN_RECIPE: &str = "standin-1";

/// The cases, as `--cases` names them.
const CASES: [&str; 5] = [
    "alpine-base",
    "netboot",
    "jumphost",
    "stand-in",
    "jumphost-stand-in",
];
/// The floors: alpine-base installed, and the jumphost's packages and overlay installed.
const STANDIN: &str = "stand-in";
const JUMPHOST_STANDIN: &str = "jumphost-stand-in";

/// Figure names shared by every case.
const K_SBIN_INIT: &str = "kernel start -> /sbin/init";
const K_DEFAULT: &str = "kernel start -> default runlevel";
const P_DEFAULT: &str = "power-on -> default runlevel";
const K_INIT: &str = "kernel start -> init";
const UNPACK: &str = "initramfs unpack (kernel)";
/// The last row of the OpenRC steps' comparison: from OpenRC's banner to the marker's line.
const OPENRC_TOTAL: &str = "OpenRC start -> default runlevel";
/// The OpenRC steps printed beside the floor's: those this far apart in a column.
const STEP_APART: Duration = Duration::from_millis(50);

struct Case {
    name: String,
    initramfs: PathBuf,
    /// The boot medium (none for netboot).
    medium: Option<PathBuf>,
    cmdline: String,
    standin: bool,
    /// A user-mode network card (netboot).
    net: bool,
    /// The stand-in its ratios are to: the one that installed the same packages and overlay
    /// (the jumphost's own), else alpine-base's.
    floor: &'static str,
}

fn usage() -> ! {
    println!(
        "usage: bootbench [--runs N] [--smp LIST] [--cases LIST] [--levels LIST] [--until WHEN]\n\
         \x20                [--append WORDS]\n\
         \n  --runs N       boots per case and CPU count (default 5)\
         \n  --smp LIST     CPU counts, comma separated (default 1,2)\
         \n  --cases LIST   of alpine-base,netboot,jumphost,stand-in,jumphost-stand-in (default all)\
         \n  --levels LIST  also measure these zstd levels of the initramfs (e.g. 1,3,9,19)\
         \n  --until WHEN   default (OpenRC's default runlevel, the default) or switch_root\
         \n                 (the init's figures only: quicker; not with a quiet command line)\
         \n  --append WORDS added to the command line of every case but the stand-in (e.g.\
         \n                 debug_init: the init's debug lines, timed in the .timed.log)\
         \n\nBoots under qemu TCG with the binaries of $PROJECT_OUT/bin (make builds them)."
    );
    std::process::exit(0)
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn main() {
    let mut runs = 5usize;
    let mut smps = vec![1u32, 2];
    let mut cases = list("alpine-base,netboot,jumphost,stand-in,jumphost-stand-in");
    let mut levels: Vec<i32> = Vec::new();
    let mut until = Until::DefaultRunlevel;
    let mut append = String::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next().unwrap_or_else(|| {
                eprintln!("bootbench: {a} needs a value");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--runs" => runs = val().parse().unwrap_or_else(|_| bad("--runs")),
            "--smp" => {
                smps = list(&val())
                    .iter()
                    .map(|s| s.parse().unwrap_or_else(|_| bad("--smp")))
                    .collect()
            }
            "--cases" => cases = list(&val()),
            "--append" => append = val(),
            "--until" => {
                until = match val().as_str() {
                    "default" => Until::DefaultRunlevel,
                    "switch_root" => Until::SwitchRoot,
                    other => {
                        eprintln!("bootbench: --until {other:?}: default or switch_root");
                        std::process::exit(2)
                    }
                }
            }
            "--levels" => {
                levels = list(&val())
                    .iter()
                    .map(|s| s.parse().unwrap_or_else(|_| bad("--levels")))
                    .collect()
            }
            "-h" | "--help" => usage(),
            other => {
                eprintln!("bootbench: unknown argument {other:?} (see --help)");
                std::process::exit(2)
            }
        }
    }
    for c in &cases {
        if !CASES.contains(&c.as_str()) {
            eprintln!("bootbench: unknown case {c:?} ({})", CASES.join(", "));
            std::process::exit(2)
        }
    }
    let env = Env::get();
    println!(
        "   {runs} boots per case and CPU count, qemu TCG, 1024 MiB, kernel {}; load at start: {}",
        env.kver,
        loadavg()
    );
    // The netboot and jumphost cases: the default features and `network` (their NIC drivers),
    // mkinitfs's default zstd level, as users' images have it.
    let initramfs = env.initramfs(&InitramfsRecipe {
        zstd_level: None,
        ..InitramfsRecipe::standard()
    });
    // alpine-base from its medium: the image mkinitfs makes by default (no network drivers).
    let base_initramfs = env.initramfs(&InitramfsRecipe::default_image());
    let (base_ovl_name, base_ovl) = base_overlay();
    let base_medium = env.medium(&signed_medium(
        env,
        vec!["alpine-base".into()],
        false,
        "ALPINE",
        "modloop=none",
        &base_initramfs,
        &base_ovl_name,
        base_ovl.tar_gz(),
    ));
    let mut all: Vec<Case> = Vec::new();
    let mut server: Option<Server> = None;
    let mut jumphost: Option<(Vec<String>, String, Overlay)> = None;
    for c in &cases {
        match c.as_str() {
            "alpine-base" => all.push(Case {
                name: "alpine-base".into(),
                initramfs: base_initramfs.clone(),
                medium: Some(base_medium.clone()),
                cmdline: "modloop=none".into(),
                standin: false,
                net: false,
                floor: STANDIN,
            }),
            "netboot" => {
                let s = server.insert(netboot_server(env, &base_ovl_name, base_ovl.tar_gz()));
                let url = format!("http://10.0.2.2:{}", s.port);
                all.push(Case {
                    name: "netboot".into(),
                    initramfs: initramfs.clone(),
                    medium: None,
                    cmdline: format!(
                        "modloop=none ip=dhcp alpine_repo={url}/apks \
                         apkovl={url}/ovl/{base_ovl_name}"
                    ),
                    standin: false,
                    net: true,
                    floor: STANDIN,
                })
            }
            "jumphost" | "jumphost-stand-in" => {
                let (world, cmdline, ovl) = jumphost.get_or_insert_with(|| jumphost_profile(env));
                let medium = env.medium(&signed_medium(
                    env,
                    world.clone(),
                    true,
                    "JUMPHOST",
                    cmdline,
                    &initramfs,
                    "jumphost.apkovl.tar.gz",
                    ovl.tar_gz(),
                ));
                let standin = c == JUMPHOST_STANDIN;
                all.push(Case {
                    name: c.clone(),
                    initramfs: if standin {
                        standin_root(env, ovl, world, true)
                    } else {
                        initramfs.clone()
                    },
                    medium: Some(medium),
                    cmdline: cmdline.clone(),
                    standin,
                    net: false,
                    floor: JUMPHOST_STANDIN,
                });
            }
            _ => all.push(Case {
                name: STANDIN.into(),
                initramfs: standin_root(env, &base_ovl, &["alpine-base".to_string()], false),
                medium: Some(base_medium.clone()),
                cmdline: "modloop=none".into(),
                standin: true,
                net: false,
                floor: STANDIN,
            }),
        }
    }
    if !append.trim().is_empty() {
        for c in all.iter_mut().filter(|c| !c.standin) {
            c.cmdline = format!("{} {}", c.cmdline, append.trim());
        }
    }
    for c in &all {
        let medium = match &c.medium {
            Some(m) => format!("medium {} KiB (vfat)", size_kib(m)),
            None => "no medium (HTTP on loopback)".into(),
        };
        println!(
            "   {}: initramfs {} KiB, {medium}, cmdline \"{}\"",
            c.name,
            size_kib(&c.initramfs),
            c.cmdline
        );
    }
    // samples[case][smp], and the OpenRC steps of the same boots
    let mut samples: Vec<Vec<Samples>> = all
        .iter()
        .map(|_| smps.iter().map(|_| Samples::default()).collect())
        .collect();
    let mut steps = samples.clone();
    // Interleaved (run, CPUs, case): a change of the host's load hits every case alike.
    for run in 0..runs {
        for (si, &smp) in smps.iter().enumerate() {
            for (ci, c) in all.iter().enumerate() {
                boot_once(
                    env,
                    c,
                    smp,
                    run,
                    until,
                    &mut samples[ci][si],
                    &mut steps[ci][si],
                );
            }
        }
    }
    // Each case's ratios are to its own floor, else to alpine-base's stand-in.
    let floor_of = |c: &Case| {
        all.iter()
            .position(|f| f.standin && f.name == c.floor)
            .or_else(|| all.iter().position(|f| f.standin && f.name == STANDIN))
    };
    let columns = |ci: usize| -> Vec<(String, &Samples)> {
        smps.iter()
            .enumerate()
            .map(|(si, smp)| (format!("-smp {smp}"), &samples[ci][si]))
            .collect()
    };
    for (ci, c) in all.iter().enumerate() {
        println!("-- {}", c.name);
        let floor = floor_of(c);
        let ratios: Vec<(&str, Vec<Option<Duration>>)> = match floor {
            Some(fi) if !c.standin => [K_SBIN_INIT, K_DEFAULT, P_DEFAULT]
                .iter()
                .map(|f| {
                    (
                        *f,
                        smps.iter()
                            .enumerate()
                            .map(|(si, _)| samples[fi][si].median(f))
                            .collect(),
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        let floor_name = floor.map_or(STANDIN, |fi| all[fi].name.as_str());
        print!("{}", bench::table(&columns(ci), &ratios, floor_name));
        match floor {
            Some(fi) if !c.standin && until == Until::DefaultRunlevel => {
                println!(
                    "   OpenRC's steps {:.2} s or more apart from {floor_name}'s (medians, {} / \
                     {floor_name}; a step runs from the end of the one before to its [ ok ])",
                    STEP_APART.as_secs_f64(),
                    c.name
                );
                let cols: Vec<(String, &Samples, &Samples)> = smps
                    .iter()
                    .enumerate()
                    .map(|(si, smp)| (format!("-smp {smp}"), &steps[ci][si], &steps[fi][si]))
                    .collect();
                print!(
                    "{}",
                    bench::step_differences(&cols, STEP_APART, OPENRC_TOTAL)
                );
            }
            _ => {}
        }
    }
    let by_name = |n: &str| all.iter().position(|c| c.name == n);
    if let (Some(net), Some(medium)) = (by_name("netboot"), by_name("alpine-base")) {
        println!(
            "-- netboot vs medium boot of alpine-base ({K_SBIN_INIT}, medians; initramfs {} KiB \
             and {} KiB)",
            size_kib(&all[net].initramfs),
            size_kib(&all[medium].initramfs)
        );
        for (si, smp) in smps.iter().enumerate() {
            if let (Some(n), Some(m)) = (
                samples[net][si].median(K_SBIN_INIT),
                samples[medium][si].median(K_SBIN_INIT),
            ) {
                println!(
                    "   -smp {smp}: netboot {:.2} s, medium {:.2} s: {:.2}x",
                    n.as_secs_f64(),
                    m.as_secs_f64(),
                    n.as_secs_f64() / m.as_secs_f64()
                );
            }
        }
    }
    drop(server);
    if !levels.is_empty() {
        zstd_levels(env, &levels, runs, &smps, &base_medium);
    }
    println!("   load at end: {}", loadavg());
}

fn bad(opt: &str) -> ! {
    eprintln!("bootbench: {opt}: not a number list (see --help)");
    std::process::exit(2)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn size_kib(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len() / 1024).unwrap_or(0)
}

/// How far a boot goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    /// OpenRC's default runlevel (the overlay's marker).
    DefaultRunlevel,
    /// The init's hand-over to `/sbin/init` (its timeline on the console; not with `quiet`).
    SwitchRoot,
}

/// Boots `c` once with `smp` CPUs and records its figures.
/// With `until` the default runlevel, `steps` gets the durations of OpenRC's steps (one sample per
/// label and boot: a label seen twice adds up) and OpenRC start -> default runlevel.
fn boot_once(
    env: &Env,
    c: &Case,
    smp: u32,
    run: usize,
    until: Until,
    s: &mut Samples,
    steps: &mut Samples,
) {
    let name = format!("bench-{}-smp{smp}-{run}", c.name);
    let disk = c.medium.as_ref().map(|m| env.copy_medium(m, &name));
    let mut image = Image::kernel(&env.kernel, &c.initramfs).cmdline(&c.cmdline);
    if let Some(d) = &disk {
        image = image.disk(Disk::virtio(d));
    }
    let mut opts = Opts {
        smp,
        ..Opts::named(&name)
    };
    if c.net {
        opts = opts.net(Net::user());
    }
    let mut vm = Vm::boot(&image, opts);
    match until {
        Until::DefaultRunlevel => {
            vm.expect(MARK_DEFAULT);
            vm.expect(MARK_END);
        }
        Until::SwitchRoot if c.standin => {
            vm.expect(MARK_STANDIN_EXEC);
            vm.expect("\n");
        }
        Until::SwitchRoot => {
            vm.expect("boot timeline");
            vm.expect("kernel start -> now");
            vm.expect(" s\n");
        }
    }
    let power_on = vm.seen_at(MARK_DEFAULT);
    vm.power_cut();
    if until == Until::DefaultRunlevel {
        let timed = vm.timed_lines();
        let mut boot: Vec<(String, Duration)> = Vec::new();
        for (label, d) in bench::openrc_steps(&timed, MARK_DEFAULT) {
            match boot.iter_mut().find(|(l, _)| *l == label) {
                Some((_, sum)) => *sum += d,
                None => boot.push((label, d)),
            }
        }
        for (label, d) in &boot {
            steps.add(label, *d);
        }
        let at = |pred: &dyn Fn(&str) -> bool| timed.iter().find(|(_, l)| pred(l)).map(|(t, _)| *t);
        if let (Some(a), Some(b)) = (
            at(&|l| l.contains("OpenRC") && l.contains("is starting up")),
            at(&|l| l.contains(MARK_DEFAULT)),
        ) {
            steps.add(OPENRC_TOTAL, b.saturating_sub(a));
        }
    }
    if let Some(d) = &disk {
        let _ = std::fs::remove_file(d);
    }
    let text = vm.text();
    let value = |marker: &str| {
        text.find(marker)
            .and_then(|i| text[i + marker.len()..].lines().next())
            .and_then(bench::parse_uptime)
    };
    if let Some(d) = bench::kernel_unpack(&text) {
        s.add(UNPACK, d);
    }
    if c.standin {
        if let Some(d) = value(MARK_STANDIN_INIT) {
            s.add(K_INIT, d);
        }
        if let Some(d) = value(MARK_STANDIN_EXEC) {
            s.add(K_SBIN_INIT, d);
        }
    } else {
        let Some(block) = vm.timeline() else {
            vm.fail("no boot timeline in the marker's output");
        };
        for (label, d) in bench::parse_timeline(&block) {
            // The timeline is rendered as the init hands over: its "now" is the exec.
            let label = if label == "kernel start -> now" {
                K_SBIN_INIT.to_string()
            } else {
                label
            };
            if label != "switch_root" {
                s.add(&label, d);
            }
        }
    }
    if let Some(d) = value(MARK_DEFAULT) {
        s.add(K_DEFAULT, d);
    }
    if let Some(d) = power_on {
        s.add(P_DEFAULT, d);
    }
    eprint!(".");
}

/// The netboot case's server: Alpine's repository at `/apks`, the signed overlay at `/ovl`.
fn netboot_server(env: &Env, ovl_name: &str, ovl: Vec<u8>) -> Server {
    let sig = env.sign_overlay(&ovl, ovl_name);
    let tree = env
        .assets
        .join(format!("bench-netboot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::create_dir_all(tree.join("ovl")).expect("netboot tree");
    std::os::unix::fs::symlink(env.alpine_repo(), tree.join("apks")).expect("netboot tree");
    std::fs::write(tree.join("ovl").join(ovl_name), ovl).expect("netboot tree");
    std::fs::write(tree.join("ovl").join(format!("{ovl_name}.sig")), sig).expect("netboot tree");
    Server::start(&tree)
}

/// The alpine-base medium's overlay: its world and the marker service.
fn base_overlay() -> (String, Overlay) {
    (
        "bench.apkovl.tar.gz".into(),
        Overlay::new()
            .world(&["alpine-base"])
            .scenario(MARKER_SCRIPT),
    )
}

#[allow(clippy::too_many_arguments)]
fn signed_medium(
    env: &Env,
    world: Vec<String>,
    project_repo: bool,
    label: &str,
    cmdline: &str,
    initramfs: &Path,
    ovl_name: &str,
    ovl: Vec<u8>,
) -> MediumRecipe {
    let sig = env.sign_overlay(&ovl, ovl_name);
    MediumRecipe {
        uki: UkiRecipe::None,
        format: MediumFormat::Vfat,
        world,
        project_repo,
        world_extra: Vec::new(),
        label: label.into(),
        cmdline: cmdline.into(),
        initramfs: initramfs.to_path_buf(),
        overlay: Some((ovl_name.into(), ovl, Some(sig))),
    }
}

/// The jumphost appliance (appliances/jumphost): its world, command line and files as a signed
/// overlay, plus the marker service. Reads `profile.toml` (mkimage --profile) or the older
/// `world` and `cmdline` files.
fn jumphost_profile(_env: &Env) -> (Vec<String>, String, Overlay) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../appliances/jumphost");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    let (world, cmdline, hostname) = match read("profile.toml") {
        Some(text) => {
            let t: toml::Table = text
                .parse()
                .unwrap_or_else(|e| panic!("{}/profile.toml: {e}", dir.display()));
            let world = t
                .get("world")
                .and_then(|w| w.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let s = |k: &str| t.get(k).and_then(|v| v.as_str()).map(String::from);
            (world, s("cmdline").unwrap_or_default(), s("hostname"))
        }
        None => (
            read("world")
                .unwrap_or_else(|| panic!("{}: no profile.toml and no world", dir.display()))
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>(),
            read("cmdline").unwrap_or_default().trim().to_string(),
            None,
        ),
    };
    let mut ovl = Overlay::new();
    let rootfs = dir.join("rootfs");
    ovl = add_tree(ovl, &rootfs, &rootfs);
    if let Some(h) = hostname {
        ovl = ovl.file("etc/hostname", format!("{h}\n"));
    }
    let w: Vec<&str> = world.iter().map(String::as_str).collect();
    let ovl = ovl.world(&w).scenario(MARKER_SCRIPT);
    let cmdline = if cmdline
        .split_whitespace()
        .any(|w| w.starts_with("modloop="))
    {
        cmdline
    } else {
        format!("{cmdline} modloop=none").trim().to_string()
    };
    (world, cmdline, ovl)
}

fn add_tree(mut ovl: Overlay, top: &Path, dir: &Path) -> Overlay {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let rel = p
            .strip_prefix(top)
            .expect("beneath the top")
            .to_string_lossy()
            .into_owned();
        let md = std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        if md.file_type().is_symlink() {
            let target = std::fs::read_link(&p).expect("a symlink");
            ovl = ovl.symlink(&rel, &target.to_string_lossy());
        } else if md.is_dir() {
            ovl = ovl.dir(&rel, md.mode() & 0o7777);
            ovl = add_tree(ovl, top, &p);
        } else {
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            ovl = ovl.file_mode(&rel, data, md.mode() & 0o7777);
        }
    }
    ovl
}

/// A stand-in (cached): `world` installed by `apk` (from Alpine's fixture repository, and the
/// project's `out/repo` with `project_repo`) with the overlay `ovl` under it, the runlevels and
/// serial getty the init would add, a trivial `/init`, as a zstd newc archive. alpine-base's is
/// the floor of the alpine-base boots; the jumphost's (its 4-package world and overlay: sshd,
/// chronyd and networking in the default runlevel) is the jumphost's, so its ratio compares
/// the same OpenRC start.
fn standin_root(env: &Env, ovl: &Overlay, world: &[String], project_repo: bool) -> PathBuf {
    let ovl_bytes = ovl.tar_gz();
    let mut h = Sha256::new();
    h.update(STANDIN_RECIPE.as_bytes());
    h.update(STANDIN_INIT.as_bytes());
    h.update(&ovl_bytes);
    h.update(world.join(" ").as_bytes());
    h.update(std::fs::read(env.bin("apk")).expect("out/bin/apk"));
    h.update(
        std::fs::read(env.alpine_repo().join("x86_64/APKINDEX.tar.gz")).expect("the fixture index"),
    );
    let project_index = env.out.join("repo/x86_64/APKINDEX.tar.gz");
    if project_repo {
        h.update(
            std::fs::read(&project_index).unwrap_or_else(|e| {
                panic!("{}: {e} (make repo builds it)", project_index.display())
            }),
        );
    }
    let out = env
        .assets
        .join(format!("standin-{}", &hex::encode(h.finalize())[..16]));
    if out.is_file() {
        return out;
    }
    let stage = tempfile::tempdir_in(&env.assets).expect("a staging directory");
    let root = stage.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let tgz = stage.path().join("ovl.tar.gz");
    std::fs::write(&tgz, &ovl_bytes).unwrap();
    run(Command::new("tar")
        .arg("xzf")
        .arg(&tgz)
        .arg("-C")
        .arg(&root));
    // Alpine's keys, and the project's build key for out/repo.
    let keys = stage.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    for e in std::fs::read_dir(env.alpine_keys())
        .expect("Alpine's keys")
        .flatten()
    {
        std::fs::copy(e.path(), keys.join(e.file_name())).unwrap();
    }
    let mut apk = Command::new(env.bin("apk"));
    apk.args(["add", "-q", "--initdb", "--no-network", "--root"])
        .arg(&root)
        .arg("--repository")
        .arg(env.alpine_repo());
    if project_repo {
        std::fs::copy(
            env.out.join("keys/project-build.rsa.pub"),
            keys.join("project-build.rsa.pub"),
        )
        .expect("out/keys/project-build.rsa.pub (make repo makes it)");
        apk.arg("--repository").arg(env.out.join("repo"));
    }
    run(apk.arg("--keys-dir").arg(&keys).args(world));
    // What the init's finish phase does for this overlay (default services, serial getty).
    let _ = std::fs::remove_file(root.join(init::boot::DEFAULT_SERVICES_MARKER));
    for (level, svc) in init::plan::service_links(true, false, true) {
        let dir = root.join("etc/runlevels").join(level);
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join(svc);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("/etc/init.d/{svc}"), &link).unwrap();
        }
    }
    let cfg = init::BootConfig::from_cmdline("console=ttyS0 modloop=none");
    let inittab = root.join("etc/inittab");
    let text = std::fs::read_to_string(&inittab).unwrap_or_default();
    let add = init::plan::inittab_additions(&text, &cfg.consoles);
    std::fs::write(&inittab, text + &add).unwrap();
    let securetty = root.join("etc/securetty");
    if let Ok(text) = std::fs::read_to_string(&securetty) {
        let add: String = init::plan::securetty_additions(&text, &cfg.consoles)
            .iter()
            .map(|t| format!("{t}\n"))
            .collect();
        std::fs::write(&securetty, text + &add).unwrap();
    }
    let init = root.join("init");
    std::fs::write(&init, STANDIN_INIT).unwrap();
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755)).unwrap();
    for d in ["proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    // The kernel opens /dev/console for /init before anything is mounted.
    run(Command::new("mknod")
        .arg(root.join("dev/console"))
        .args(["c", "5", "1"]));
    let tmp = out.with_extension("tmp");
    run(Command::new("sh").arg("-c").arg(format!(
        "cd '{}' && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet | zstd -q -3 -T0 -f -o '{}'",
        root.display(),
        tmp.display()
    )));
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// The zstd level of the initramfs: size and the kernel's unpack (kernel start -> `/init`) of the
/// standard initramfs at each level, booting the alpine-base medium up to the init's hand-over.
fn zstd_levels(env: &Env, levels: &[i32], runs: usize, smps: &[u32], medium: &Path) {
    println!(
        "-- initramfs zstd level: the default image's size and build; the standard image's size, \
         the kernel's unpack of it, kernel start -> init and init total (alpine-base, to switch_root)"
    );
    let mut rows: Vec<(i32, u64, Vec<Samples>)> = Vec::new();
    let mut defaults: Vec<(u64, Duration)> = Vec::new();
    for &level in levels {
        defaults.push(default_image_build(env, level));
        let img = level_initramfs(env, level);
        rows.push((
            level,
            size_kib(&img),
            smps.iter().map(|_| Samples::default()).collect(),
        ));
        let c = Case {
            name: format!("zstd{level}"),
            initramfs: img,
            medium: Some(medium.to_path_buf()),
            cmdline: "modloop=none".into(),
            standin: false,
            net: false,
            floor: STANDIN,
        };
        for run in 0..runs {
            for (si, &smp) in smps.iter().enumerate() {
                let last = rows.len() - 1;
                boot_once(
                    env,
                    &c,
                    smp,
                    run,
                    Until::SwitchRoot,
                    &mut rows[last].2[si],
                    &mut Samples::default(),
                );
            }
        }
    }
    let mut header = format!(
        "  {:<6} {:>14} {:>12} {:>14}",
        "level", "default image", "its build", "standard"
    );
    for smp in smps {
        header.push_str(&format!(
            " {:>16} {:>18} {:>12}",
            format!("unpack -smp {smp}"),
            "kernel -> init",
            "init total"
        ));
    }
    println!("{header}");
    for ((level, kib, s), (dkib, dtime)) in rows.iter().zip(&defaults) {
        let mut line = format!(
            "  {level:<6} {:>10} KiB {:>12} {:>10} KiB",
            dkib,
            bench::cell(Some(*dtime)),
            kib
        );
        for col in s {
            line.push_str(&format!(
                " {:>16} {:>18} {:>12}",
                bench::cell(col.median(UNPACK)),
                bench::cell(col.median(K_INIT)),
                bench::cell(col.median("init total"))
            ));
        }
        println!("{line}");
    }
}

/// The default initramfs (mkinitfs's default features, the bench's index key) at a zstd level:
/// its size in KiB and how long mkinitfs took to write it.
fn default_image_build(env: &Env, level: i32) -> (u64, Duration) {
    let stage = tempfile::tempdir_in(&env.assets).expect("a staging directory");
    let conf = stage.path().join("mkinitfs.conf");
    std::fs::write(
        &conf,
        format!("initfscomp=\"zstd\"\ncomplevel_zstd=\"{level}\"\n"),
    )
    .unwrap();
    let out = stage.path().join("initramfs");
    let t = std::time::Instant::now();
    run(Command::new(env.bin("mkinitfs"))
        .arg("-q")
        .arg("-c")
        .arg(&conf)
        .arg("--keys-dir")
        .arg(&env.keys().index_pub)
        .arg("-o")
        .arg(&out)
        .arg(&env.kver));
    (size_kib(&out), t.elapsed())
}

/// The standard initramfs at a zstd level (cached by content).
fn level_initramfs(env: &Env, level: i32) -> PathBuf {
    env.initramfs(&InitramfsRecipe {
        zstd_level: Some(level),
        ..InitramfsRecipe::standard()
    })
}
