//! Solver cases as text scripts in `tests/solver/*.test` (the apk-tools test style): repositories,
//! installed packages, world, the applet and its arguments, and the expected output.

use super::*;
use crate::dep::Dependency;
use crate::package::{Checksum, Package};
use crate::pool::Pool;
use crate::repo::{Location, RepoSpec, Repository};
use sha1::{Digest, Sha1};

fn packages(text: &str) -> Vec<Package> {
    let idx = crate::index::parse(text);
    assert!(idx.skipped.is_empty(), "index text: {:?}", idx.skipped);
    idx.packages
        .into_iter()
        .map(|mut p| {
            if p.identity.is_empty() {
                p.identity = Checksum(Sha1::digest(format!("{}-{}", p.name, p.version)).to_vec());
            }
            p
        })
        .collect()
}

struct Case {
    repos: Vec<(Option<String>, String)>,
    installed: String,
    world: String,
    args: Vec<String>,
    expect: String,
    expect_error: bool,
}

fn parse_case(text: &str) -> Case {
    let mut c = Case {
        repos: Vec::new(),
        installed: String::new(),
        world: String::new(),
        args: Vec::new(),
        expect: String::new(),
        expect_error: false,
    };
    let mut section = "";
    for line in text.lines() {
        if line.starts_with('#') && section.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('@') {
            let mut w = rest.split_whitespace();
            section = match w.next().unwrap_or("") {
                "repo" => {
                    c.repos.push((w.next().map(str::to_string), String::new()));
                    "repo"
                }
                "installed" => "installed",
                "world" => "world",
                "args" => {
                    c.args = w.map(str::to_string).collect();
                    "args"
                }
                "expect" => "expect",
                "expect-error" => {
                    c.expect_error = true;
                    "expect"
                }
                other => panic!("unknown section {other}"),
            };
            continue;
        }
        let buf = match section {
            "repo" => &mut c.repos.last_mut().unwrap().1,
            "installed" => &mut c.installed,
            "world" => &mut c.world,
            "expect" => &mut c.expect,
            _ => continue,
        };
        buf.push_str(line);
        buf.push('\n');
    }
    c
}

fn run_case(c: &Case) -> String {
    let mut pool = Pool::new(vec!["x86_64".into()]);
    for (i, p) in packages(&c.installed).iter().enumerate() {
        pool.add_installed(p, i, None);
    }
    for (tag, text) in &c.repos {
        let spec = RepoSpec {
            tag: tag.clone(),
            url: "/repo".into(),
            location: Location::Dir("/repo".into()),
        };
        let repo = Repository {
            spec,
            packages: packages(text),
            description: None,
            pkg_dir: Some("/repo".into()),
            masked: false,
            index: "/repo/x86_64/APKINDEX.tar.gz".into(),
            skipped: Vec::new(),
            unknown_letters: false,
            unknown_uppercase: false,
        };
        pool.add_repository(&repo);
    }
    let (mut world, err) = crate::db::world::parse(&c.world);
    assert!(err.is_none());
    let mut opts = SolverOptions::default();
    let mut args = c.args.iter();
    let applet = args.next().expect("@args applet").as_str();
    let mut names = Vec::new();
    let mut rest: Vec<&String> = args.collect();
    while let Some(pos) = rest.iter().position(|a| a.starts_with('-')) {
        match rest[pos].as_str() {
            "-u" => opts.upgrade_all = false,
            "--latest" => opts.latest = true,
            "--available" => opts.available = true,
            "--ignore" => {
                opts.ignore.insert(rest[pos + 1].clone());
                rest.remove(pos + 1);
            }
            o => panic!("unknown option {o}"),
        }
        if rest[pos] == "-u" {
            opts.upgrade.extend(
                rest.iter()
                    .filter(|a| !a.starts_with('-'))
                    .map(|a| a.to_string()),
            );
        }
        rest.remove(pos);
    }
    names.extend(rest.iter().map(|s| s.to_string()));
    match applet {
        "add" => {
            for n in &names {
                let d = Dependency::parse(n, true).unwrap();
                world.retain(|w| w.name != d.name);
                world.push(d);
            }
        }
        "del" => world.retain(|w| !names.contains(&w.name)),
        "upgrade" => {
            if names.is_empty() {
                opts.upgrade_all = true;
            } else {
                opts.upgrade.extend(names.iter().cloned());
            }
        }
        "fix" => opts.reinstall.extend(names.iter().cloned()),
        other => panic!("unknown applet {other}"),
    }
    let sol = solve(&pool, &world, &opts);
    let mut out = String::new();
    if let Some(e) = &sol.errors {
        out.push_str("ERROR: unable to select packages:\n");
        out.push_str(&e.render(50));
        return out;
    }
    let n = sol.changes.len();
    for (i, ch) in sol.changes.iter().enumerate() {
        out.push_str(&crate::output::change_line(i + 1, n, &pool, ch));
        out.push('\n');
    }
    out
}

#[test]
fn solver_cases() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/solver");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    assert!(files.len() >= 20);
    let mut failures = Vec::new();
    for f in &files {
        let c = parse_case(&std::fs::read_to_string(f).unwrap());
        let got = run_case(&c);
        let is_err = got.starts_with("ERROR:");
        if got != c.expect || is_err != c.expect_error {
            failures.push(format!(
                "== {}\n-- expected:\n{}-- got:\n{}",
                f.display(),
                c.expect,
                got
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
