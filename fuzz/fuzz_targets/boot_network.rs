//! What a network attacker and the command line feed the init's network code: DHCP replies (in
//! the selecting and the requesting state, with the transaction id and card address patched in
//! so the fuzzer gets past the filters), the whole kernel command line (ip=, BOOTIF=, URLs) and
//! the overlay URL template. PID 1 must never panic on any of it.
#![no_main]
use init::cmdline::{BootConfig, MacAddr};
use init::dhcp::{Client, Step};
use libfuzzer_sys::fuzz_target;

const MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
const XID: u32 = 0x1234_5678;

/// `data` as a reply to our transaction: BOOTREPLY, our xid and card address.
fn ours(data: &[u8]) -> Vec<u8> {
    let mut m = data.to_vec();
    if m.len() >= 34 {
        m[0] = 2;
        m[4..8].copy_from_slice(&XID.to_be_bytes());
        m[28..34].copy_from_slice(&MAC.0);
    }
    m
}

fuzz_target!(|data: &[u8]| {
    let (first, second) = data.split_at(data.len() / 2);
    let mut c = Client::new(MAC, XID).expect("client");
    let _ = c.discover();
    let _ = c.on_reply(data);
    if let Step::Send(_) = c.on_reply(&ours(first)) {
        let _ = c.on_reply(&ours(second));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let cfg = BootConfig::from_cmdline(text);
        let _ = init::plan::network::network_request(&cfg);
        let _ = init::plan::overlay_url(text, Some(MAC), Some(text));
        let _ = init::plan::shared_name_warning(text);
        let _ = init::plan::signature_url(text);
    }
});
