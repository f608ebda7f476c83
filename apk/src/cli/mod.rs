//! The `apk` command line: global options (accepted before or after the applet), one module per
//! applet. Arguments are parsed by clap "as typed", then turned into [`apk::context::Options`].
//! What a run ends with (an applet's error count, or an error) becomes the exit code in one place,
//! [`exit_code`].

use apk::context::{Access, Context, Options};
use apk::output::{Out, Progress};
use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

// The applets print with these instead of std's: a write error (a reader that went away, as in
// `apk info | head -1`) is ignored and apk goes on to its normal end, as apk-tools does (it
// ignores SIGPIPE and gets EPIPE), where std's macros panic. SIGPIPE stays ignored: a transaction
// is never killed halfway because its output went nowhere.
macro_rules! println {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock());
    }};
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}
macro_rules! eprintln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($t)*);
    }};
}
macro_rules! eprint {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr().lock(), $($t)*);
    }};
}

mod add;
mod audit;
mod cache;
mod del;
mod fetch;
mod fix;
mod index;
mod info;
mod keygen;
mod list;
mod mkpkg;
mod policy;
mod search;
mod sign;
mod stats;
mod update;
mod upgrade;
mod verify;
mod version;

/// apk-tools compatible package manager (v3 semantics, v2 on-disk formats).
#[derive(Parser, Debug)]
#[command(name = "apk", version, disable_help_subcommand = true)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    /// Optional for clap only: `apk --print-arch` needs no applet; without one (and without
    /// `--print-arch`) apk prints its help and fails, as apk-tools does.
    #[command(subcommand)]
    applet: Option<Applet>,
}

/// Global options.
#[derive(Args, Debug, Clone)]
struct Global {
    /// Manage the file system at DIR instead of /
    #[arg(short = 'p', long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Use an additional repository (directory, index file, file: path or URL)
    #[arg(short = 'X', long = "repository", global = true, value_name = "REPO")]
    repository: Vec<String>,
    /// Read repositories from FILE instead of ROOT/etc/apk/repositories
    #[arg(long, global = true, value_name = "FILE")]
    repositories_file: Option<PathBuf>,
    /// Trusted keys directory (relative paths are relative to the root)
    #[arg(long, global = true, value_name = "DIR")]
    keys_dir: Option<PathBuf>,
    /// Accept indexes and packages without a trusted signature (never bad ones)
    #[arg(long, global = true)]
    allow_untrusted: bool,
    /// Create a new database if none exists
    #[arg(long, global = true)]
    initdb: bool,
    /// Do not use the network (remote repositories are served from the cache only)
    #[arg(long, global = true)]
    no_network: bool,
    /// Do not use any cache
    #[arg(long, global = true)]
    no_cache: bool,
    /// Use DIR as the package cache
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Refresh the indexes of remote repositories now
    #[arg(short = 'U', long, global = true)]
    update_cache: bool,
    /// Refresh cached remote indexes older than AGE minutes (default 240)
    #[arg(long, global = true, value_name = "AGE")]
    cache_max_age: Option<u64>,
    /// Also trust the certificate authorities in FILE for HTTPS (repeatable; SSL_CERT_FILE too)
    #[arg(long = "ca", global = true, value_name = "FILE")]
    ca: Vec<PathBuf>,
    /// Give up on a server that sends nothing for SECONDS (default 60)
    #[arg(long, global = true, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Do not check HTTPS server certificates (indexes and packages are still verified)
    #[arg(long, global = true)]
    no_check_certificate: bool,
    /// Show what would be done without doing it
    #[arg(short = 's', long, global = true)]
    simulate: bool,
    /// Do not run package scripts
    #[arg(long, global = true)]
    no_scripts: bool,
    /// Accepted for compatibility (commit hooks are never run)
    #[arg(long, global = true)]
    no_commit_hooks: bool,
    /// Do not create .apk-new files for modified configuration
    #[arg(long, global = true)]
    clean_protected: bool,
    /// Read the list of overlay files (kept over package files) from stdin
    #[arg(long, global = true)]
    overlay_from_stdin: bool,
    /// Continue even if the world cannot be satisfied
    #[arg(long, global = true)]
    force_broken_world: bool,
    /// Overwrite files owned by other packages
    #[arg(long, global = true)]
    force_overwrite: bool,
    /// Allow non-repository packages on a tmpfs root
    #[arg(long, global = true)]
    force_non_repository: bool,
    /// Accepted for compatibility
    #[arg(long, global = true)]
    force_old_apk: bool,
    /// Treat the root as tmpfs: auto, yes or no
    #[arg(long, global = true, value_name = "auto|yes|no")]
    root_tmpfs: Option<String>,
    /// Initramfs mode: create the database, force overwrite, broken world and non-repository
    #[arg(long, global = true)]
    initramfs_diskless_boot: bool,
    /// Delete modified configuration files on removal too
    #[arg(long, global = true)]
    purge: bool,
    /// Show a progress bar
    #[arg(long, global = true, overrides_with = "no_progress")]
    progress: bool,
    /// Do not show a progress bar
    #[arg(long, global = true)]
    no_progress: bool,
    /// Write progress as "done/total stage" lines to this file descriptor
    #[arg(long, global = true, value_name = "FD")]
    progress_fd: Option<i32>,
    /// Print less (repeatable)
    #[arg(short = 'q', long, global = true, action = clap::ArgAction::Count)]
    quiet: u8,
    /// Print more (repeatable)
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Wait up to N seconds for the database lock
    #[arg(long, global = true, value_name = "N", default_value_t = 0)]
    wait: u64,
    /// Architecture of the root
    #[arg(long, global = true, value_name = "ARCH")]
    arch: Option<String>,
    /// Print the architecture and exit
    #[arg(long, global = true)]
    print_arch: bool,
    /// Accepted for compatibility: package scripts always run chrooted into the root
    #[arg(long, global = true)]
    force_no_chroot: bool,
    /// Do not ask before committing (the default: this apk never asks)
    #[arg(long, global = true)]
    no_interactive: bool,
    /// Accepted for compatibility: no log file is written
    #[arg(long, global = true)]
    no_logfile: bool,
}

#[derive(Subcommand, Debug)]
enum Applet {
    /// Add packages to world and install them
    Add(add::Args),
    /// Remove packages from world and uninstall them
    Del(del::Args),
    /// Upgrade installed packages
    Upgrade(upgrade::Args),
    /// Repair packages (reinstall)
    Fix(fix::Args),
    /// Show information about packages
    Info(info::Args),
    /// List packages
    List(list::Args),
    /// Compare the root with the installed database
    Audit(audit::Args),
    /// Create a repository index from packages
    Index(index::Args),
    /// Verify package signatures and integrity
    Verify(verify::Args),
    /// Compare versions
    Version(version::Args),
    /// Show database statistics
    Stats(stats::Args),
    /// Build a package from a directory and metadata
    Mkpkg(mkpkg::Args),
    /// Generate a signing key pair (ed25519 by default)
    Keygen(keygen::Args),
    /// Sign indexes or packages in place
    Sign(sign::Args),
    /// Update the repository indexes
    Update(update::Args),
    /// Download packages from the repositories to a directory
    Fetch(fetch::Args),
    /// Search packages by name or description
    Search(search::Args),
    /// Manage the package cache
    Cache(cache::Args),
    /// Show the repository policy of packages
    Policy(policy::Args),
}

/// Why the command line could not run.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// From the apk core (each error names its subject).
    #[error(transparent)]
    Apk(#[from] apk::Error),
    /// `--root-tmpfs` with a value other than auto, yes or no.
    #[error("--root-tmpfs: invalid value '{0}' (auto, yes or no)")]
    RootTmpfs(String),
    /// `apk mkpkg -I`/`--script` without `=`.
    #[error("'{0}': expected KEY=VALUE")]
    KeyValue(String),
    /// `apk keygen --rsa BITS` outside the supported sizes.
    #[error("--rsa {0}: use 1024 to 8192 bits")]
    RsaBits(usize),
}

impl From<apk::db::DbError> for CliError {
    fn from(e: apk::db::DbError) -> Self {
        CliError::Apk(e.into())
    }
}

impl From<apk::trust::KeyError> for CliError {
    fn from(e: apk::trust::KeyError) -> Self {
        CliError::Apk(e.into())
    }
}

impl Global {
    fn options(&self) -> Result<Options, CliError> {
        let root_tmpfs = match self.root_tmpfs.as_deref() {
            None | Some("auto") => None,
            Some("yes") => Some(true),
            Some("no") => Some(false),
            Some(o) => return Err(CliError::RootTmpfs(o.to_string())),
        };
        let overlay = if self.overlay_from_stdin {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|source| {
                apk::Error::Io {
                    path: "stdin".into(),
                    source,
                }
            })?;
            Some(apk::extract::OverlayList::parse(&s))
        } else {
            None
        };
        let mut http = apk::http::ClientOptions {
            proxy: apk::http::ProxyConfig::from_env(),
            insecure: self.no_check_certificate,
            ..Default::default()
        };
        if let Some(t) = self.timeout {
            http.read_timeout = std::time::Duration::from_secs(t.max(1));
            http.connect_timeout = http.read_timeout;
        }
        let mut ca_files = self.ca.clone();
        if let Some(f) = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
            ca_files.push(PathBuf::from(f));
        }
        Ok(Options {
            root: self.root.clone().unwrap_or_else(|| PathBuf::from("/")),
            update_cache: self.update_cache,
            cache_max_age: self
                .cache_max_age
                .map(|m| std::time::Duration::from_secs(m.saturating_mul(60))),
            http,
            ca_files,
            repositories: self.repository.clone(),
            repositories_file: self.repositories_file.clone(),
            keys_dir: self.keys_dir.clone(),
            extra_keys: None,
            allow_untrusted: self.allow_untrusted,
            initdb: self.initdb,
            no_network: self.no_network,
            no_cache: self.no_cache,
            cache_dir: self.cache_dir.clone(),
            simulate: self.simulate,
            no_scripts: self.no_scripts,
            clean_protected: self.clean_protected,
            overlay,
            force_broken_world: self.force_broken_world,
            force_overwrite: self.force_overwrite,
            force_non_repository: self.force_non_repository,
            root_tmpfs,
            arch: self.arch.clone(),
            wait: self.wait,
            diskless_boot: self.initramfs_diskless_boot,
            purge: self.purge,
            lenient_world: false,
            ownership: Default::default(),
            directory_permissions: false,
            jobs: 0,
            in_flight: 0,
        })
    }

    fn out(&self) -> Out {
        let tty = std::io::stdout().is_terminal();
        let width = if tty {
            terminal_width().filter(|&w| w > 25).unwrap_or(50)
        } else {
            50
        };
        // The bar: only on a terminal (or --progress), never with TERM=dumb; its character from
        // APK_PROGRESS_CHAR, else a block when the locale is UTF-8 (cosmetic, terminal only).
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        let progress = if let Some(fd) = self.progress_fd {
            Progress::Fd(fd)
        } else if (self.progress || tty) && !dumb && !self.no_progress {
            let utf8 = ["LC_ALL", "LC_CTYPE", "LANG"]
                .iter()
                .filter_map(|v| std::env::var(v).ok())
                .any(|v| v.to_ascii_uppercase().contains("UTF-8"));
            let ch = std::env::var("APK_PROGRESS_CHAR")
                .ok()
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| if utf8 { "\u{2588}".into() } else { "#".into() });
            Progress::Bar(ch)
        } else {
            Progress::None
        };
        Out {
            verbosity: 1 + self.verbose as i32 - self.quiet as i32,
            width,
            progress,
        }
    }
}

fn terminal_width() -> Option<usize> {
    let ws = rustix::termios::tcgetwinsize(std::io::stdout()).ok()?;
    (ws.ws_col > 0).then_some(ws.ws_col as usize)
}

/// What a run produced: the applet's error count.
pub type Outcome = Result<usize, CliError>;

/// apk's applet-local `-s` (info: size) clashes with the global `--simulate`; rewrite it before
/// clap sees it, as apk-tools lets applet options win.
fn preprocess(mut argv: Vec<String>) -> Vec<String> {
    for (applet, long) in [("info", "--size"), ("fetch", "--stdout")] {
        if let Some(pos) = argv.iter().position(|a| a == applet) {
            for a in argv.iter_mut().skip(pos + 1) {
                if a == "-s" {
                    *a = long.into();
                }
            }
        }
    }
    argv
}

/// Parse the command line, run the applet, report, and return the exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let argv: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let cli = match Cli::try_parse_from(preprocess(argv)) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return exit_code(&Err(Stop::Usage(e.use_stderr())));
        }
    };
    let out = cli.global.out();
    if cli.global.print_arch {
        println!(
            "{}",
            cli.global
                .arch
                .clone()
                .unwrap_or_else(|| apk::db::DEFAULT_ARCH.into())
        );
        return exit_code(&Ok(0));
    }
    if cli.applet.is_none() {
        // No applet (`apk`, `apk --root X`): apk-tools prints its usage to stdout and fails.
        let _ = <Cli as clap::CommandFactory>::command().print_help();
        return exit_code(&Err(Stop::Usage(true)));
    }
    let outcome = run(cli, out.clone());
    match &outcome {
        Err(CliError::Apk(apk::Error::Unsatisfiable(report))) => {
            eprint!("ERROR: unable to select packages:\n{report}")
        }
        Err(e) => out.error(&e.to_string()),
        Ok(_) => {}
    }
    exit_code(&outcome.map_err(|_| Stop::Failed))
}

/// How a run stopped early.
enum Stop {
    /// clap refused the arguments (`true`) or printed help or the version (`false`).
    Usage(bool),
    /// The applet failed (the error is already reported).
    Failed,
}

/// The exit code of a run, as apk-tools sets it: the applet's error count (at most 99), 1 for an
/// error that stopped it, 1 for bad arguments, 0 after `--help` or `--version`.
fn exit_code(outcome: &Result<usize, Stop>) -> ExitCode {
    let code = match outcome {
        Ok(errors) => (*errors).min(99) as u8,
        Err(Stop::Usage(refused)) => u8::from(*refused),
        Err(Stop::Failed) => 1,
    };
    ExitCode::from(code)
}

fn open(g: &Global, access: Access, out: Out) -> Result<Context, CliError> {
    Ok(Context::open(g.options()?, access, out)?)
}

fn run(cli: Cli, out: Out) -> Outcome {
    let g = &cli.global;
    let Some(applet) = cli.applet else {
        return Ok(0);
    };
    match applet {
        Applet::Add(a) => a.run(open(g, Access::Writable, out)?),
        Applet::Del(a) => a.run(open(g, Access::Writable, out)?),
        Applet::Upgrade(a) => a.run(open(g, Access::Writable, out)?),
        Applet::Fix(a) => a.run(open(g, Access::Writable, out)?),
        Applet::Info(a) => a.run(open(g, Access::ReadOnly, out)?),
        Applet::List(a) => a.run(open(g, Access::ReadOnly, out)?),
        Applet::Audit(a) => a.run(open(g, Access::ReadOnly, out)?),
        Applet::Stats(a) => a.run(open(g, Access::ReadOnly, out)?),
        Applet::Index(a) => a.run(open(g, Access::None, out)?),
        Applet::Verify(a) => a.run(open(g, Access::None, out)?),
        Applet::Version(a) => {
            let access = if a.needs_db() {
                Access::ReadOnly
            } else {
                Access::None
            };
            a.run(open(g, access, out)?)
        }
        Applet::Update(a) => {
            let mut opts = g.options()?;
            opts.update_cache = true;
            a.run(Context::open(opts, Access::Repositories, out)?)
        }
        Applet::Fetch(a) => a.run(open(g, Access::Repositories, out)?),
        Applet::Search(a) => a.run(open(g, Access::Repositories, out)?),
        Applet::Policy(a) => a.run(open(g, Access::Repositories, out)?),
        Applet::Cache(a) => a.run(open(g, Access::ReadOnly, out)?),
        Applet::Mkpkg(a) => a.run(out),
        Applet::Keygen(a) => a.run(out),
        Applet::Sign(a) => a.run(out),
    }
}
