//! Kernel module metadata (the texts the init parses at boot) must never panic: the input is
//! split into modules.dep, modules.alias, modules.softdep and modules.builtin at NUL bytes, and
//! every lookup and rendering runs on what parses.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(5, '\0');
    let texts = kmod::Texts {
        dep: parts.next().unwrap_or(""),
        alias: parts.next().unwrap_or(""),
        softdep: parts.next().unwrap_or(""),
        builtin: parts.next().unwrap_or(""),
    };
    let query = parts.next().unwrap_or("vfat");
    if let Ok(index) = kmod::Index::parse(texts, "6.1.0-test") {
        let _ = index.resolve(query);
        let _ = index.modules_for(query);
        let _ = index.dep.render(|_| true);
        let _ = index.aliases.render(|_| true);
        let _ = kmod::softdep::render(&index.softdeps);
    }
    let _ = kmod::modules_list::parse(text);
    let _ = kmod::order::parse(text, "6.1.0-test");
    for c in [
        kmod::Compression::Gzip,
        kmod::Compression::Zstd,
        kmod::Compression::Xz,
    ] {
        let _ = kmod::decompress(data, c);
    }
});
