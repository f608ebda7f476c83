//! Version validation and comparison: no panics, and comparison is antisymmetric.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let (a, b) = s.split_once('\n').unwrap_or((s, "1.0"));
    let _ = apk::version::is_valid(a);
    // Every valid version is loadable; loadable ones (digits after the letter too) order
    // antisymmetrically.
    if apk::version::is_valid(a) {
        assert!(apk::version::is_loadable(a), "{a:?}");
    }
    let x = apk::version::compare(a, b);
    let y = apk::version::compare(b, a);
    if apk::version::is_loadable(a) && apk::version::is_loadable(b) {
        assert_eq!(x, y.reverse(), "{a:?} vs {b:?}");
    }
    let _ = apk::version::compare_fuzzy(a, b, true);
    let _ = apk::version::split_name_version(a);
});
