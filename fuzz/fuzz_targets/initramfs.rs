//! An initramfs (concatenated newc archives, plain or compressed) must never panic the reader
//! mkimage uses to look inside the initramfs it puts on a medium.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Read;

fuzz_target!(|data: &[u8]| {
    let mut sink = Vec::new();
    let _ = mkinitfs::cpio::scan(data, &mut |header, body| {
        let _ = header.path();
        sink.clear();
        body.take(1 << 16).read_to_end(&mut sink)?;
        Ok(())
    });
    let _ = mkinitfs::cpio::parse(data);
});
