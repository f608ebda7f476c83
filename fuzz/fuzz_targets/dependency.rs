//! Dependency tokens and world files: no panics; what parses prints back and parses the same.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    for tok in s.split_whitespace().take(64) {
        if let Ok(d) = apk::dep::Dependency::parse(tok, true) {
            let again = apk::dep::Dependency::parse(&d.to_string(), true).expect("printed dependency parses");
            assert_eq!(d.name, again.name);
            assert_eq!(d.tag, again.tag);
            assert_eq!(d.conflict, again.conflict);
        }
    }
    let _ = apk::db::world::parse(s);
});
