//! `apk`: the command line over the `apk` library. Parsing and the applets live in [`cli`]; the
//! library never sees clap, so programs that link it (the boot init) carry no argument parser.

#![deny(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main(std::env::args_os())
}
