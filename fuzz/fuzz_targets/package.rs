//! A package stream: gzip members, tar sections, digests, the data tar. Never panics, never
//! allocates without bound.
#![no_main]
use apk::archive::{self, Mode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys = apk::trust::Keyring::default();
    if let Ok(p) = archive::open_package(data, &Mode::Verify { keys: &keys, allow_untrusted: true }) {
        let mut r = archive::data_reader(data, p.data.clone());
        for _ in 0..10_000 {
            match r.next_entry() {
                Ok(Some(_)) => {
                    let _ = r.read_all(1 << 20);
                }
                _ => break,
            }
        }
    }
    let mut r = apk::tar::Reader::new(data);
    for _ in 0..10_000 {
        match r.next_entry() {
            Ok(Some(_)) => {}
            _ => break,
        }
    }
});
