//! `.PKGINFO` parsing must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(p) = apk::package::Package::from_pkginfo(text) {
            let mut s = String::new();
            p.write_index_header(&mut s);
        }
    }
});
