//! CLI behaviour compared exactly: usage errors (stderr, exit 1), help (stdout, exit 0), and the
//! include/exclude messages of Alpine's lbu (lbu/README.md, "Commands").

mod common;
use common::*;

fn run(bed: &Bed, args: &[&str]) -> (i32, String, String) {
    let o = bed.lbu(args);
    (o.status.code().unwrap_or(-1), stdout(&o), stderr(&o))
}

#[test]
fn usage_errors_go_to_stderr_with_exit_1() {
    let o = lbu_cmd().output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert!(
        stderr(&o).starts_with("usage: lbu [OPTIONS] <COMMAND>\n"),
        "{}",
        stderr(&o)
    );

    let o = lbu_cmd().arg("frobnicate").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "error: unrecognized subcommand 'frobnicate'\n\nusage: lbu [OPTIONS] <COMMAND>\n\nFor more information, try '--help'.\n");

    let o = lbu_cmd().arg("include").output().unwrap();
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(1), ""));
    assert_eq!(stderr(&o), "error: the following required arguments were not provided:\n  <PATH>...\n\nusage: lbu include <PATH>...\n\nFor more information, try '--help'.\n");

    // Misplaced options are errors (upstream printed usage on stdout with exit 0).
    let o = lbu_cmd().args(["commit", "-a"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("error: unexpected argument '-a' found\n"),
        "{}",
        stderr(&o)
    );
    let o = lbu_cmd().args(["include", "-l", "x"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
}

#[test]
fn every_subcommand_has_help() {
    let o = lbu_cmd().arg("-h").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("usage: lbu [OPTIONS] <COMMAND>\n"));
    for cmd in [
        "include",
        "inc",
        "add",
        "exclude",
        "ex",
        "delete",
        "list",
        "ls",
        "package",
        "pkg",
        "commit",
        "ci",
        "status",
        "stat",
        "st",
        "diff",
        "list-backup",
        "lb",
        "revert",
    ] {
        let o = lbu_cmd().args([cmd, "--help"]).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{cmd}");
        assert!(
            stdout(&o).starts_with("usage: lbu "),
            "{cmd}: {}",
            stdout(&o)
        );
        assert!(o.stderr.is_empty());
    }
}

#[test]
fn include_exclude_messages() {
    let bed = Bed::new();
    let list = bed.root.join("etc/apk/protected_paths.d/lbu.list");
    std::fs::create_dir_all(list.parent().unwrap()).unwrap();
    std::fs::write(&list, "+root/x\n").unwrap();
    let l = list.display().to_string();
    let (code, out, err) = run(
        &bed,
        &[
            "include",
            "-v",
            "/root/x",
            "/root/dir",
            "//foo.txt",
            "/root/*.key",
        ],
    );
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        format!(
            "root/x is already in {l}.\nAdding root/dir to {l}.\nAdding foo.txt to {l}.\nAdding root/*.key to {l}.\n\
             root/x is not in {l}\nroot/dir is not in {l}\nfoo.txt is not in {l}\nroot/*.key is not in {l}\n"
        )
    );
    assert_eq!(
        std::fs::read_to_string(&list).unwrap(),
        "+root/x\n+root/dir\n+foo.txt\n+root/*.key\n"
    );
    // Without -v: silent.
    assert_eq!(
        run(&bed, &["exclude", "/root/dir"]),
        (0, String::new(), String::new())
    );
    assert_eq!(
        std::fs::read_to_string(&list).unwrap(),
        "+root/x\n+foo.txt\n+root/*.key\n-root/dir\n"
    );
    let (_, out, _) = run(&bed, &["delete", "-v", "root/dir", "etc/shadow"]);
    assert_eq!(out, format!("root/dir is already in {l}.\nAdding etc/shadow to {l}.\nroot/dir is not in {l}\netc/shadow is not in {l}\n"));
    let (_, out, _) = run(&bed, &["inc", "-rv", "foo.txt", "nope"]);
    assert_eq!(
        out,
        format!("Removing foo.txt from {l}.\nnope is not in {l}\n")
    );
    assert_eq!(run(&bed, &["include", "-l"]).1, "root/x\nroot/*.key\n");
    assert_eq!(
        run(&bed, &["ex", "-l", "-v"]).1,
        "Exclude files:\nroot/dir\netc/shadow\n"
    );
    // Exact bytes: a backslash and blanks are kept and compared verbatim.
    run(&bed, &["add", "etc/we\\ird  "]);
    assert!(std::fs::read_to_string(&list)
        .unwrap()
        .ends_with("+etc/we\\ird  \n"));
    let (_, out, _) = run(&bed, &["add", "-v", "etc/we\\ird  "]);
    assert!(out.starts_with("etc/we\\ird   is already in"), "{out}");
}

#[test]
fn program_name_selects_the_subcommand() {
    let bed = Bed::new();
    let link = bed.tmp.path().join("lbu_include");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_lbu"), &link).unwrap();
    let o = std::process::Command::new(&link)
        .env_clear()
        .arg("--root")
        .arg(&bed.root)
        .arg("/root/y")
        .output()
        .unwrap();
    ok(&o);
    assert!(
        std::fs::read_to_string(bed.root.join("etc/apk/protected_paths.d/lbu.list"))
            .unwrap()
            .contains("+root/y\n")
    );
}
