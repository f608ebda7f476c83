//! The small text formats beside an overlay: the generation file (parse/render round trip) and
//! the deletion manifest (only safe relative paths come out).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = overlays::generation::parse(data) {
        assert_eq!(
            overlays::generation::parse(&overlays::generation::render(n)).unwrap(),
            n
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(paths) = overlays::deleted::parse(text) {
            for p in &paths {
                assert!(!p.starts_with('/') && !p.split('/').any(|c| c == ".." || c.is_empty()));
            }
            assert_eq!(overlays::deleted::parse(&overlays::deleted::format(&paths)).unwrap(), paths);
        }
    }
});
