//! `lbu`: parse, run, print one error line, exit (lbu/README.md, "Commands").

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    lbu::cleanup::install_signal_handler();
    let args = cli::args_from_program_name(std::env::args_os().collect());
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let help = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
            // Help asked for: stdout, 0. Anything else (including no subcommand): stderr, 1.
            if help {
                print!("{e}");
                return ExitCode::SUCCESS;
            }
            eprint!("{}", e.render().to_string().replacen("Usage:", "usage:", 1));
            return ExitCode::from(1);
        }
    };
    let code = match lbu::run(cli.invocation()) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("ERROR: {err}");
            ExitCode::from(1)
        }
    };
    lbu::cleanup::run_all();
    code
}
