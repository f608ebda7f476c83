//! APKINDEX text and the signed index container must never panic. The text reader is lenient
//! (unusable entries are skipped, never the whole index): what it keeps has a name and a loadable
//! version, and what the writer makes of it reads back without losing an entry.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let idx = apk::index::parse(&*String::from_utf8_lossy(data));
    for p in &idx.packages {
        assert!(!p.name.is_empty(), "entry without a name kept");
        assert!(apk::version::is_loadable(&p.version), "{:?} kept", p.version);
    }
    let with_identity: Vec<_> = idx
        .packages
        .into_iter()
        .filter(|p| !p.identity.is_empty())
        .collect();
    let again = apk::index::parse(&apk::index::write(&with_identity));
    assert_eq!(
        again.packages.len(),
        with_identity.len(),
        "written entries must read back: {:?}",
        again.skipped
    );
    let _ = apk::archive::open_index(data, &apk::trust::Keyring::default(), true);
});
