//! Overlay archives (gzip tar, as read from an untrusted medium): the readers never panic, stay
//! within their bounds, and never return a member name outside the tree.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((members, deletions)) = overlays::read_members(data) {
        for m in &members {
            assert!(!m.name.starts_with('/'), "{:?}", m.name);
            assert!(!m.name.split('/').any(|c| c == ".."), "{:?}", m.name);
        }
        for d in &deletions {
            assert!(!d.starts_with('/') && !d.split('/').any(|c| c == ".."), "{d:?}");
        }
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        let _ = overlays::read_contents(data, &names);
    }
});
