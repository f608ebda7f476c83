//! APKINDEX text and the signed index container must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(idx) = apk::index::parse(text) {
            let _ = apk::index::write(&idx.packages);
        }
    }
    let _ = apk::archive::open_index(data, &apk::trust::Keyring::default(), true);
});
