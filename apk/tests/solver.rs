//! The solver suite in apk-tools v3's own `.test` format, replayed through v3's harness contract
//! (`test/solver.sh` + `testlib.sh`) with the real `apk` binary. See apk/README.md, "Solver tests".
//!
//! A case is `tests/solver/NAME.test`:
//! - `@ARGS <args>` (may repeat; joined with spaces, split on whitespace like the shell does);
//! - `@REPO [@tag ]FILE`: FILE (index text beside the test) is packed as `FILE.tar.gz` holding one
//!   member `APKINDEX` (unsigned, `tar czf`), listed in `ROOT/etc/apk/repositories` as
//!   `[@tag ]test:/ABS/FILE.tar.gz`;
//! - `@INSTALLED FILE` (symlinked as `ROOT/lib/apk/db/installed`), `@WORLD deps...` (one per line
//!   in `ROOT/etc/apk/world`), `@CACHE FILE` (symlinked as `ROOT/etc/apk/cache/installed`);
//! - `@EXPECT` then the exact combined stdout and stderr. Other lines before it are comments.
//!
//! The command is `apk --root ROOT --allow-untrusted --simulate --force-no-chroot --no-interactive
//! --cache-max-age 0 [--no-cache] ARGS`, run from `ROOT/tmp`, both streams into one file, compared
//! byte for byte. The exit code is not compared (v3's harness does not either).
//!
//! `SOLVER_TEST=substring` runs only the matching cases.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One parsed `.test` file.
#[derive(Debug, Default)]
struct Case {
    args: Vec<String>,
    repos: Vec<(Option<String>, String)>,
    installed: Option<String>,
    world: Option<Vec<String>>,
    cache: Option<String>,
    expect: String,
    has_args: bool,
}

fn parse(text: &str) -> Result<Case, String> {
    let mut c = Case::default();
    let mut in_expect = false;
    for line in text.lines() {
        if in_expect {
            c.expect.push_str(line);
            c.expect.push('\n');
            continue;
        }
        let rest = |p: &str| line.strip_prefix(p).map(str::to_string);
        if let Some(a) = rest("@ARGS ") {
            c.args.extend(a.split_whitespace().map(str::to_string));
            c.has_args = true;
        } else if let Some(w) = rest("@WORLD ") {
            c.world = Some(w.split_whitespace().map(str::to_string).collect());
        } else if let Some(f) = rest("@INSTALLED ") {
            c.installed = Some(f.trim().to_string());
        } else if let Some(r) = rest("@REPO ") {
            let r = r.trim();
            match r.strip_prefix('@') {
                Some(tagged) => {
                    let (tag, file) = tagged
                        .split_once(' ')
                        .ok_or_else(|| format!("invalid spec: {line}"))?;
                    c.repos
                        .push((Some(format!("@{tag}")), file.trim().to_string()));
                }
                None => c.repos.push((None, r.to_string())),
            }
        } else if let Some(f) = rest("@CACHE ") {
            c.cache = Some(f.trim().to_string());
        } else if line == "@EXPECT" {
            in_expect = true;
        } else if line.starts_with('@') {
            return Err(format!("invalid spec: {line}"));
        }
    }
    Ok(c)
}

/// Pack index text as `OUT` = a gzipped tar with one member `APKINDEX`, as v3's harness does.
fn pack_index(src: &Path, out: &Path, scratch: &Path) {
    let dir = scratch.join(format!(
        "pack-{}",
        out.file_name().unwrap().to_string_lossy()
    ));
    fs::create_dir_all(&dir).unwrap();
    fs::copy(src, dir.join("APKINDEX")).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let st = Command::new("tar")
        .arg("czf")
        .arg(out)
        .arg("-C")
        .arg(&dir)
        .arg("APKINDEX")
        .status()
        .unwrap();
    assert!(st.success(), "tar czf {}", out.display());
}

/// Run one case; `Ok(())` when the output matches, else a diff-like report. `ext` names the
/// packed index (`tar.gz`, or `adb` as newer v3 harnesses name the same gzipped tar).
fn run_case(test: &Path, work: &Path, ext: &str) -> Result<(), String> {
    let text = fs::read_to_string(test).map_err(|e| format!("{}: {e}", test.display()))?;
    let case = parse(&text).map_err(|e| format!("{}: {e}", test.display()))?;
    if !case.has_args {
        return Err(format!("{}: no @ARGS", test.display()));
    }
    let testdir = test.parent().unwrap();
    let root = work.join("root");
    for d in ["etc/apk/cache", "lib/apk/db", "tmp", "var/log"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(root.join("etc/apk/world"), "").unwrap();
    fs::write(root.join("lib/apk/db/installed"), "").unwrap();
    if let Some(w) = &case.world {
        let mut s = String::new();
        for d in w {
            s.push_str(d);
            s.push('\n');
        }
        fs::write(root.join("etc/apk/world"), s).unwrap();
    }
    if let Some(i) = &case.installed {
        fs::remove_file(root.join("lib/apk/db/installed")).unwrap();
        symlink(testdir.join(i), root.join("lib/apk/db/installed")).unwrap();
    }
    let mut repositories = String::new();
    let repodir = work.join("repos");
    fs::create_dir_all(&repodir).unwrap();
    for (tag, file) in &case.repos {
        let packed = repodir.join(format!("{file}.{ext}"));
        if !packed.exists() {
            pack_index(&testdir.join(file), &packed, work);
        }
        if let Some(t) = tag {
            repositories.push_str(t);
            repositories.push(' ');
        }
        repositories.push_str(&format!("test:/{}\n", packed.display()));
    }
    fs::write(root.join("etc/apk/repositories"), repositories).unwrap();
    let mut args: Vec<String> = Vec::new();
    if let Some(c) = &case.cache {
        symlink(testdir.join(c), root.join("etc/apk/cache/installed")).unwrap();
    } else {
        args.push("--no-cache".into());
    }
    args.extend(case.args.iter().cloned());
    let outfile = work.join("output");
    let f = fs::File::create(&outfile).unwrap();
    let status = Command::new(common::apk_bin())
        .arg("--root")
        .arg(&root)
        .args([
            "--allow-untrusted",
            "--simulate",
            "--force-no-chroot",
            "--no-interactive",
            "--cache-max-age",
            "0",
        ])
        .args(&args)
        .current_dir(root.join("tmp"))
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::from(f.try_clone().unwrap()))
        .stderr(Stdio::from(f))
        .status()
        .unwrap();
    let got = fs::read_to_string(&outfile).unwrap();
    if got == case.expect {
        Ok(())
    } else {
        Err(format!(
            "FAIL: {} (apk {}, exit {:?})\n--- expected\n{}--- got\n{}",
            test.display(),
            args.join(" "),
            status.code(),
            case.expect,
            got
        ))
    }
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/solver");
    let filter = std::env::var("SOLVER_TEST").unwrap_or_default();
    let mut v: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .filter(|p| p.to_string_lossy().contains(&filter))
        .collect();
    v.sort();
    v
}

#[test]
fn v3_solver_suite() {
    let all = cases();
    let filtered = std::env::var("SOLVER_TEST").is_ok_and(|f| !f.is_empty());
    assert!(filtered || all.len() >= 100, "only {} cases", all.len());
    let scratch = tempfile::tempdir().unwrap();
    // Two workers: the cases are small and the machine is shared.
    let chunks: Vec<Vec<(usize, PathBuf)>> = (0..2)
        .map(|w| {
            all.iter()
                .cloned()
                .enumerate()
                .filter(|(i, _)| i % 2 == w)
                .collect()
        })
        .collect();
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let scratch = scratch.path().to_path_buf();
                s.spawn(move || {
                    let mut fails = Vec::new();
                    for (i, t) in chunk {
                        let work = scratch.join(i.to_string());
                        fs::create_dir_all(&work).unwrap();
                        if let Err(e) = run_case(&t, &work, "tar.gz") {
                            fails.push(e);
                        }
                    }
                    fails
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    println!(
        "solver: {} passed, {} failed",
        all.len() - failures.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

/// v3 harnesses that name the packed index `FILE.adb` (same gzipped tar inside) work as well.
#[test]
fn index_named_adb() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/solver");
    let scratch = tempfile::tempdir().unwrap();
    for (i, case) in ["basic.test", "pinning-tagged.test", "installif-chain.test"]
        .iter()
        .enumerate()
    {
        let work = scratch.path().join(i.to_string());
        fs::create_dir_all(&work).unwrap();
        if let Err(e) = run_case(&dir.join(case), &work, "adb") {
            panic!("{e}");
        }
    }
}
