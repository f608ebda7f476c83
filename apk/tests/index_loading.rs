//! Loading indexes as leniently as apk-tools does: every case with a hand-made index signed in the
//! test. One odd entry never costs the rest of its index; an entry that really cannot be used is
//! skipped with one warning naming the index and the line.

mod common;

use apk::mkpkg::{self, Recipe};
use apk::trust::PrivateKey;
use common::*;
use std::path::{Path, PathBuf};

/// A repository directory with `x86_64/APKINDEX.tar.gz` holding `text`, signed by a fresh key,
/// and the keys directory that trusts it.
struct Signed {
    _t: tempfile::TempDir,
    repo: PathBuf,
    keys: PathBuf,
    root: PathBuf,
}

impl Signed {
    fn index(&self) -> PathBuf {
        self.repo.join("x86_64/APKINDEX.tar.gz")
    }
}

fn signed_index(text: &str) -> Signed {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    std::fs::create_dir_all(repo.join("x86_64")).unwrap();
    write_signed(&repo, &t.path().join("keys"), text);
    let root = empty_root(t.path());
    Signed {
        repo,
        keys: t.path().join("keys"),
        root,
        _t: t,
    }
}

fn write_signed(repo: &Path, keys: &Path, text: &str) {
    let key = PrivateKey::generate_ed25519();
    std::fs::create_dir_all(keys).unwrap();
    std::fs::write(keys.join("test.pub"), key.public().to_pem()).unwrap();
    let body = apk::archive::index_body(text, Some("hand-made"), 0);
    let signed = apk::archive::resign(&body, &key, "test.pub").unwrap();
    std::fs::write(repo.join("x86_64/APKINDEX.tar.gz"), signed).unwrap();
}

/// An installed state with nothing installed (what `--simulate` needs: it creates no database).
fn empty_root(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("lib/apk/db")).unwrap();
    std::fs::create_dir_all(root.join("etc/apk")).unwrap();
    std::fs::write(root.join("lib/apk/db/installed"), "").unwrap();
    std::fs::write(root.join("etc/apk/world"), "").unwrap();
    std::fs::write(root.join("etc/apk/arch"), "x86_64\n").unwrap();
    root
}

fn simulate(s: &Signed, pkgs: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec![
        "add",
        "--simulate",
        "--no-network",
        "--root",
        s.root.to_str().unwrap(),
        "--keys-dir",
        s.keys.to_str().unwrap(),
        "--repository",
        s.repo.to_str().unwrap(),
    ];
    args.extend_from_slice(pkgs);
    let o = run_apk(&args);
    let (out, err) = text(&o);
    (o.status.code(), out, err)
}

/// An identity whose last base64 character has non-zero bits past the 20 digest bytes (as some
/// index writers leave them): apk-tools ignores those bits, and the package installs and verifies.
#[test]
fn identity_with_trailing_bits_in_base64_loads_and_verifies() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let payload = t.path().join("payload");
    std::fs::create_dir_all(payload.join("usr/share/x")).unwrap();
    std::fs::write(payload.join("usr/share/x/file"), "content\n").unwrap();
    let recipe = Recipe {
        info: vec![
            ("pkgname".into(), "tb".into()),
            ("pkgver".into(), "1.0-r0".into()),
        ],
        scripts: vec![],
        dir: Some(payload),
        epoch: Some(1_700_000_000),
    };
    let buf = mkpkg::build(&recipe, None).unwrap();
    let entry = mkpkg::index_entry(&buf, &Default::default(), true).unwrap();
    std::fs::create_dir_all(repo.join("x86_64")).unwrap();
    std::fs::write(repo.join("x86_64/tb-1.0-r0.apk"), &buf).unwrap();
    let canonical = entry.identity.to_string();
    assert!(canonical.ends_with('='), "{canonical}");
    // The character before '=' carries 4 digest bits and 2 padding bits: set the padding bits.
    let mut chars: Vec<char> = canonical.chars().collect();
    let i = chars.len() - 2;
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let v = alphabet.find(chars[i]).unwrap();
    chars[i] = alphabet.as_bytes()[v | 3] as char;
    let lenient: String = chars.into_iter().collect();
    assert_ne!(lenient, canonical);
    let index_text = apk::index::write(&[entry]).replace(&canonical, &lenient);
    assert!(index_text.contains(&lenient));
    let keys = t.path().join("keys");
    write_signed(&repo, &keys, &index_text);
    let root = t.path().join("root");
    let o = run_apk(&[
        "add",
        "--root",
        root.to_str().unwrap(),
        "--initdb",
        "--no-network",
        "--keys-dir",
        keys.to_str().unwrap(),
        "--repository",
        repo.to_str().unwrap(),
        "tb",
    ]);
    let (out, err) = text(&o);
    assert_eq!(err, "");
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert_eq!(
        std::fs::read_to_string(root.join("usr/share/x/file")).unwrap(),
        "content\n"
    );
    // The database records the identity in its canonical spelling.
    let db = std::fs::read_to_string(root.join("lib/apk/db/installed")).unwrap();
    assert!(db.starts_with(&format!("C:{canonical}\n")), "{db}");
}

/// Versions outside v3's grammar that apk-tools loads (Alpine 3.19: `aspell-ru-0.99f7-r2`,
/// `librasterlite2-1.1.0b1-r7`): they load, order as apk-tools 2.14.4 orders them (the newer
/// `0.99f10` wins over `0.99f7`), satisfy dependencies and print unchanged.
#[test]
fn versions_apk_tools_tolerates_load_order_and_print() {
    let s = signed_index(
        "P:aspell-ru\nV:0.99f7-r2\nI:10\n\n\
         P:aspell-ru\nV:0.99f10-r0\nI:10\n\n\
         P:librasterlite2\nV:1.1.0b1-r7\nI:10\np:cmd:rl2tool=1.1.0b1-r7\n\n\
         P:librasterlite2-dev\nV:1.1.0b1-r7\nI:10\nD:librasterlite2=1.1.0b1-r7\n\n",
    );
    let (code, out, err) = simulate(&s, &["aspell-ru", "librasterlite2-dev"]);
    assert_eq!(err, "");
    assert_eq!(code, Some(0));
    assert_eq!(
        out,
        "(1/3) Installing aspell-ru (0.99f10-r0)\n\
         (2/3) Installing librasterlite2 (1.1.0b1-r7)\n\
         (3/3) Installing librasterlite2-dev (1.1.0b1-r7)\n\
         OK: 30 B in 3 packages\n"
    );
    // A version pinned to the older one is honoured, so the ordering is really used.
    let (code, out, _) = simulate(&s, &["aspell-ru<0.99f10"]);
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with("(1/1) Installing aspell-ru (0.99f7-r2)\n"),
        "{out}"
    );
}

/// Each kind of unusable entry is skipped with exactly one warning naming the index and the line;
/// the other entries of the same index (before and after) load and install.
#[test]
fn unusable_entries_are_skipped_with_one_warning_each() {
    let s = signed_index(
        "P:first\nV:1\nI:1\n\n\
         P:badline\nV:1\nthis is not a letter line\nT:more\n\n\
         P:badver\nV:1..2\n\n\
         P:badsize\nV:1\nS:lots\n\n\
         C:Q1notbase64!\nP:badid\nV:1\n\n\
         T:an entry without name or version\n\n\
         P:last\nV:2\nI:1\nD:first\n\n",
    );
    let (code, out, err) = simulate(&s, &["last"]);
    let idx = s.index();
    let idx = idx.display();
    assert_eq!(
        err,
        format!(
            "WARNING: {idx}: skipped the entry at line 7: badline: malformed line 'this is not a letter line'\n\
             WARNING: {idx}: skipped the entry at line 11: badver: invalid version '1..2'\n\
             WARNING: {idx}: skipped the entry at line 15: badsize: S: 'lots' is not a number\n\
             WARNING: {idx}: skipped the entry at line 17: badid: invalid checksum 'Q1notbase64!'\n\
             WARNING: {idx}: skipped the entry at line 21: entry without P: or V:\n"
        )
    );
    assert_eq!(code, Some(0));
    assert_eq!(
        out,
        "(1/2) Installing first (1)\n(2/2) Installing last (2)\nOK: 2 B in 2 packages\n"
    );
    // A skipped entry is simply not there.
    let (code, _, err) = simulate(&s, &["badver"]);
    assert_eq!(code, Some(1));
    assert!(
        err.ends_with("ERROR: unable to select packages:\n  badver (no such package):\n    required by: world[badver]\n"),
        "{err}"
    );
}

/// Unknown letters (docs/apk.md, "Entry letters"): a lowercase one is ignored, an uppercase one
/// makes its package uninstallable; apk-tools' one warning says which.
#[test]
fn unknown_letters_warn_once_and_uppercase_ones_make_the_package_uninstallable() {
    let s = signed_index("P:a\nV:1\nI:1\ny:future\n\nP:b\nV:1\nI:1\ny:again\n\n");
    let (code, out, err) = simulate(&s, &["a", "b"]);
    assert_eq!(
        err,
        "WARNING: This apk-tools is OLD! Some packages might not function properly.\n"
    );
    assert_eq!(code, Some(0));
    assert!(out.ends_with("OK: 2 B in 2 packages\n"), "{out}");
    let s = signed_index("P:a\nV:1\nI:1\n\nP:b\nV:1\nI:1\nY:future\n\n");
    let (code, out, err) = simulate(&s, &["a"]);
    assert_eq!(
        err,
        "WARNING: This apk-tools is OLD! Some packages are not installable.\n"
    );
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "(1/1) Installing a (1)\nOK: 1 B in 1 packages\n")
    );
    let (code, _, err) = simulate(&s, &["b"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("  b-1:\n    error: uninstallable\n"), "{err}");
}

/// A byte that is not UTF-8 (say, in a description) does not cost the index.
#[test]
fn non_utf8_bytes_do_not_drop_the_index() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    std::fs::create_dir_all(repo.join("x86_64")).unwrap();
    let key = PrivateKey::generate_ed25519();
    let keys = t.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("test.pub"), key.public().to_pem()).unwrap();
    // index_body takes text; build the tar by hand around raw bytes instead.
    let mut raw = b"P:latin\nV:1\nI:1\nT:caf".to_vec();
    raw.push(0xe9);
    raw.extend_from_slice(b"\n\n");
    let mut w = apk::tar::Writer::new(Vec::new(), apk::tar::Magic::Gnu);
    w.pax_extras = false;
    let e = apk::tar::Entry::new("APKINDEX", apk::tar::Kind::File, 0o644);
    w.append(&e, &raw).unwrap();
    let body = apk::gzip::compress(&w.finish().unwrap());
    let signed = apk::archive::resign(&body, &key, "test.pub").unwrap();
    std::fs::write(repo.join("x86_64/APKINDEX.tar.gz"), signed).unwrap();
    let s = Signed {
        repo,
        keys,
        root: empty_root(t.path()),
        _t: t,
    };
    let (code, out, err) = simulate(&s, &["latin"]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    assert_eq!(out, "(1/1) Installing latin (1)\nOK: 1 B in 1 packages\n");
}

/// Alpine 3.19's real main and community indexes (23,030 packages, Alpine-signed) load completely:
/// no warning, and `alpine-base` resolves on an empty root.
#[test]
fn real_alpine_indexes_load_without_losing_an_entry() {
    let idx = shared().join("fixtures/alpine-3.19-indexes");
    let t = tempfile::tempdir().unwrap();
    let root = empty_root(t.path());
    let o = run_apk(&[
        "add",
        "--simulate",
        "--no-network",
        "--root",
        root.to_str().unwrap(),
        "--keys-dir",
        alpine_keys().to_str().unwrap(),
        "--repository",
        idx.join("main").to_str().unwrap(),
        "--repository",
        idx.join("community").to_str().unwrap(),
        "alpine-base",
    ]);
    let (out, err) = text(&o);
    assert_eq!(err, "");
    assert_eq!(o.status.code(), Some(0));
    assert!(
        out.ends_with("(25/25) Installing alpine-base (3.19.2-r0)\nOK: 10.2 MiB in 25 packages\n"),
        "{out}"
    );
    let o = run_apk(&[
        "--root",
        root.to_str().unwrap(),
        "--keys-dir",
        alpine_keys().to_str().unwrap(),
        "--repository",
        idx.join("main").to_str().unwrap(),
        "--repository",
        idx.join("community").to_str().unwrap(),
        "stats",
    ]);
    let (out, err) = text(&o);
    assert_eq!(err, "");
    assert!(out.contains("  packages: 23030\n"), "{out}");
}
