//! `apk`: thin glue over the `apk` library's CLI.

fn main() {
    std::process::exit(apk::cli::main_with_args(std::env::args().collect()));
}
