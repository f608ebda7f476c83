//! The installed database text: no panics; what parses writes back and parses again.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(pkgs) = apk::db::installed::parse(s) {
        let text = apk::db::installed::write(&pkgs);
        let _ = apk::db::installed::parse(&text);
    }
});
