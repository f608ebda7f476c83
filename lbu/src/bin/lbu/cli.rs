//! Command line as typed (lbu/README.md, "Commands"), turned into the library's
//! [`lbu::Invocation`]. The subcommand comes first, as upstream; combined short flags (`-rv`)
//! work; every subcommand has `-h`. A program name `lbu_<cmd>` selects the subcommand (the
//! `lbu_commit`-style links). Options that do not belong to a subcommand are usage errors
//! (exit 1), unlike upstream's "usage on stdout, exit 0".

use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

const TEMPLATE: &str = "usage: {usage}\n\n{about-with-newline}\n{all-args}{after-help}";

/// Alpine-compatible local backup utility: save the configuration of a run-from-RAM system as
/// an apkovl on writable media, crash-safely.
#[derive(Debug, Parser)]
#[command(name = "lbu", help_template = TEMPLATE, disable_version_flag = true, subcommand_required = true, arg_required_else_help = true)]
#[command(
    after_help = "Configuration: $ROOT/etc/lbu/lbu.conf (LBU_MEDIA, LBU_BACKUPDIR, BACKUP_LIMIT, ENCRYPTION,\nDEFAULT_CIPHER, PASSWORD_FILE, SIGNING_KEY, AGE_RECIPIENTS, AGE_IDENTITY).\nInclude/exclude list: $ROOT/etc/apk/protected_paths.d/lbu.list."
)]
pub struct Cli {
    /// Operate on the system in DIR instead of / (also $ROOT).
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Accepted for compatibility; has no effect.
    #[arg(short = 'q', global = true, hide = true)]
    pub quiet: bool,
    /// Accepted and ignored, as upstream does.
    #[arg(short = 'M', global = true, hide = true, value_name = "ARG")]
    pub ignored: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Add files or directories to the overlay (`+path` in lbu.list).
    #[command(visible_aliases = ["inc", "add"], help_template = TEMPLATE)]
    Include(ListArgs),
    /// Exclude files or directories from the overlay (`-path` in lbu.list).
    #[command(visible_aliases = ["ex", "delete"], help_template = TEMPLATE)]
    Exclude(ListArgs),
    /// List the files that would be saved.
    #[command(visible_alias = "ls", help_template = TEMPLATE)]
    List(VerboseArgs),
    /// Create an overlay file (DIR, FILE or - for stdout).
    #[command(visible_alias = "pkg", help_template = TEMPLATE)]
    Package(PackageArgs),
    /// Save the overlay to the medium (crash-safe: the previous one stays valid until the new
    /// one is durable).
    #[command(visible_alias = "ci", help_template = TEMPLATE)]
    Commit(CommitArgs),
    /// Show what changed since the last commit (A added, U content or type changed, M mode or
    /// owner changed, D deleted).
    #[command(visible_aliases = ["stat", "st"], help_template = TEMPLATE)]
    Status(StatusArgs),
    /// Show a unified diff between the committed overlay and the system.
    #[command(help_template = TEMPLATE)]
    Diff(DiffArgs),
    /// List the backups on the medium.
    #[command(name = "list-backup", visible_alias = "lb", help_template = TEMPLATE)]
    ListBackup(MediaArgs),
    /// Make a backup's content the current overlay again, as a new commit (the backup is kept).
    #[command(help_template = TEMPLATE)]
    Revert(RevertArgs),
}

/// `-v`.
#[derive(Debug, Args)]
pub struct VerboseArgs {
    /// Verbose.
    #[arg(short = 'v')]
    pub verbose: bool,
}

/// include/exclude.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Remove the entries instead of adding them.
    #[arg(short = 'r', conflicts_with = "list")]
    pub remove: bool,
    /// List the entries.
    #[arg(short = 'l')]
    pub list: bool,
    /// Verbose.
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Files or directories (or globs, stored verbatim).
    #[arg(
        value_name = "PATH",
        required_unless_present = "list",
        conflicts_with = "list"
    )]
    pub paths: Vec<OsString>,
}

/// package.
#[derive(Debug, Args)]
pub struct PackageArgs {
    /// Encrypt (ENCRYPTION, else DEFAULT_CIPHER).
    #[arg(short = 'e')]
    pub encrypt: bool,
    /// Password (visible to other users: prefer PASSWORD_FILE or the terminal).
    #[arg(short = 'p', value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Verbose.
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Output directory, file, or - for stdout (never encrypted nor signed).
    #[arg(value_name = "DIR|FILE|-")]
    pub target: Option<OsString>,
}

/// commit.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Remove the other apkovl files on the medium, once the new one is in place.
    #[arg(short = 'd')]
    pub delete_old: bool,
    /// Encrypt (ENCRYPTION, else DEFAULT_CIPHER).
    #[arg(short = 'e')]
    pub encrypt: bool,
    /// Dry run: change nothing (implies -v).
    #[arg(short = 'n')]
    pub dry_run: bool,
    /// Password (visible to other users: prefer PASSWORD_FILE or the terminal).
    #[arg(short = 'p', value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Verbose.
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Medium name under /media (default LBU_MEDIA).
    #[arg(value_name = "MEDIA")]
    pub media: Option<String>,
}

/// status.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Raw `apk audit --backup` output.
    #[arg(short = 'a')]
    pub audit: bool,
    /// Password for an encrypted overlay.
    #[arg(short = 'p', value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Verbose (also prints notes about files that are never saved).
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Medium name under /media (default LBU_MEDIA).
    #[arg(value_name = "MEDIA")]
    pub media: Option<String>,
}

/// diff.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Password for an encrypted overlay.
    #[arg(short = 'p', value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Medium name under /media (default LBU_MEDIA).
    #[arg(value_name = "MEDIA")]
    pub media: Option<String>,
}

/// list-backup.
#[derive(Debug, Args)]
pub struct MediaArgs {
    /// Medium name under /media (default LBU_MEDIA).
    #[arg(value_name = "MEDIA")]
    pub media: Option<String>,
}

/// revert.
#[derive(Debug, Args)]
pub struct RevertArgs {
    /// Password for an encrypted backup.
    #[arg(short = 'p', value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Verbose.
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Backup file name on the medium (see list-backup).
    #[arg(value_name = "REVISION")]
    pub revision: String,
    /// Medium name under /media (default LBU_MEDIA).
    #[arg(value_name = "MEDIA")]
    pub media: Option<String>,
}

/// Arguments with the subcommand taken from a `lbu_<cmd>` program name.
pub fn args_from_program_name(mut args: Vec<OsString>) -> Vec<OsString> {
    let prog = args
        .first()
        .map(|a| {
            std::path::Path::new(a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    if let Some(cmd) = prog.strip_prefix("lbu_") {
        if !cmd.is_empty() {
            args.insert(1, cmd.into());
        }
    }
    args
}

fn password(p: Option<String>) -> Option<lbu::password::Password> {
    p.map(zeroize::Zeroizing::new)
}

impl Cli {
    /// The library's view of this command line.
    pub fn invocation(self) -> lbu::Invocation {
        use lbu::Command as C;
        let command = match self.cmd {
            Cmd::Include(a) if a.list => C::ShowIncludes { verbose: a.verbose },
            Cmd::Exclude(a) if a.list => C::ShowExcludes { verbose: a.verbose },
            Cmd::Include(a) => C::Include(a.edit()),
            Cmd::Exclude(a) => C::Exclude(a.edit()),
            Cmd::List(_) => C::List,
            Cmd::Package(a) => C::Package(lbu::commit::PackageOptions {
                encrypt: a.encrypt,
                password: password(a.password),
                verbose: a.verbose,
                target: a.target,
            }),
            Cmd::Commit(a) => C::Commit(lbu::commit::CommitOptions {
                delete_old: a.delete_old,
                encrypt: a.encrypt,
                dry_run: a.dry_run,
                password: password(a.password),
                verbose: a.verbose,
                media: a.media,
            }),
            Cmd::Status(a) => C::Status(lbu::status::StatusOptions {
                audit: a.audit,
                password: password(a.password),
                verbose: a.verbose,
                media: a.media,
            }),
            Cmd::Diff(a) => C::Diff(lbu::diff::DiffOptions {
                password: password(a.password),
                media: a.media,
            }),
            Cmd::ListBackup(a) => C::ListBackup { media: a.media },
            Cmd::Revert(a) => C::Revert(lbu::revert::RevertOptions {
                verbose: a.verbose,
                revision: a.revision,
                media: a.media,
                password: password(a.password),
            }),
        };
        lbu::Invocation {
            root: self.root,
            command,
        }
    }
}

impl ListArgs {
    fn edit(self) -> lbu::list::EditOptions {
        lbu::list::EditOptions {
            remove: self.remove,
            verbose: self.verbose,
            paths: self.paths,
        }
    }
}
