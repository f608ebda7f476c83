//! The init's side of the trust model (issue 13), each on the real boot: an initramfs made by
//! mkinitfs (with the boot policy or the age identity added to it where mkinitfs cannot yet or
//! would not write them), a medium made by mkimage, overlays made and signed with the overlays
//! crate. Each scenario fails in the overlay, packages or switch_root phase, so a boot costs the
//! kernel start and media discovery, plus the install where it gets that far.

use qemu_tests::{
    vfat, Disk, Env, Image, InitramfsRecipe, MediumFormat, MediumRecipe, Opts, Overlay, Vm,
};
use std::path::{Path, PathBuf};

/// A script that replaces `/sbin/init` in the new root: prints a marker and the overlay's secret,
/// powers off (no OpenRC: the boot costs only the install).
const MARKER_INIT: &str =
    "#!/bin/sh\necho \"NEWROOT secret=$(cat /etc/secret.conf)\"\nsync\npoweroff -f\n";

fn sample_overlay() -> Overlay {
    Overlay::new()
        .world(&["alpine-base"])
        .file("etc/secret.conf", "from the overlay\n")
        .file_mode("etc/qemutest-init", MARKER_INIT, 0o755)
}

/// A private copy of a medium whose top level holds the overlay `name` (bytes and `.sig`).
fn medium(run: &str, name: &str, bytes: Vec<u8>, sig: Option<String>) -> PathBuf {
    let env = Env::get();
    let medium = env.medium(&MediumRecipe {
        uki: qemu_tests::UkiRecipe::None,
        format: MediumFormat::Vfat,
        world: vec!["alpine-base".into()],
        project_repo: false,
        world_extra: vec![],
        label: "ALPINE".into(),
        cmdline: "modloop=none".into(),
        initramfs: env.initramfs(&InitramfsRecipe::standard()),
        overlay: Some((name.to_string(), bytes, sig)),
    });
    env.copy_medium(&medium, run)
}

fn boot(name: &str, initramfs: &Path, disk: &Path, cmdline: &str) -> Vm {
    let env = Env::get();
    let image = Image::kernel(&env.kernel, initramfs)
        .cmdline(&format!(
            "modloop=none panic=1 init=/etc/qemutest-init {cmdline}"
        ))
        .disk(Disk::virtio(disk));
    Vm::boot(&image, Opts::named(name))
}

/// The standard initramfs (medium, overlay and Alpine keys) with `etc/boot-policy` added.
fn with_policy(policy: &str) -> PathBuf {
    let env = Env::get();
    let base = env.initramfs(&InitramfsRecipe::standard());
    env.initramfs_with(
        &base,
        &[(bootspec::initramfs::POLICY, policy.as_bytes(), 0o644)],
    )
}

fn signed_plain(run: &str) -> PathBuf {
    let bytes = sample_overlay().tar_gz();
    let sig = Env::get().sign_overlay(&bytes, "qemutest.apkovl.tar.gz");
    medium(run, "qemutest.apkovl.tar.gz", bytes, Some(sig))
}

/// Ends a boot that must have stopped: the timeline, `panic=1`, and nothing of the overlay ran.
fn stopped(vm: &mut Vm) {
    vm.expect("boot timeline");
    vm.expect("rebooting in 1 s (panic=1)");
    vm.wait_poweroff();
    vm.refute("NEWROOT secret=");
}

/// Issue 13 item 3 (image side): `mkinitfs --ovl-require encrypted` records the policy in the
/// initramfs; a plain overlay (here even validly signed) put where the encrypted one was stops
/// the boot. Also: the policy file is read at boot and `debug_init` prints the effective policy.
#[test]
fn policy_requiring_encryption_refuses_a_plain_overlay() {
    let initramfs = with_policy("apkovl_require=encrypted\n");
    let disk = signed_plain("policy-encrypted");
    let mut vm = boot("policy-encrypted", &initramfs, &disk, "debug_init");
    vm.expect("effective boot policy:");
    vm.expect("apkovl_require=signed,encrypted");
    vm.expect("encrypted: required by etc/boot-policy apkovl_require=encrypted");
    vm.expect(
        "ERROR: overlay: /media/vda1/qemutest.apkovl.tar.gz: refused: a plain overlay, but \
         encryption is required by etc/boot-policy apkovl_require=encrypted",
    );
    stopped(&mut vm);
    vm.refute("Installing");
}

/// Issue 13 item 3 (command line): `apkovl_require=encrypted` tightens a permissive image.
#[test]
fn command_line_requiring_encryption_refuses_a_plain_overlay() {
    let env = Env::get();
    let initramfs = env.initramfs(&InitramfsRecipe::standard());
    let disk = signed_plain("cmdline-encrypted");
    let mut vm = boot(
        "cmdline-encrypted",
        &initramfs,
        &disk,
        "apkovl_require=encrypted",
    );
    vm.expect(
        "ERROR: overlay: /media/vda1/qemutest.apkovl.tar.gz: refused: a plain overlay, but \
         encryption is required by apkovl_require=encrypted on the command line",
    );
    stopped(&mut vm);
}

/// A policy file that does not parse stops the boot (fail closed) before any medium is touched.
#[test]
fn malformed_policy_stops_the_boot() {
    let env = Env::get();
    let initramfs = with_policy("apkovl_require=maybe\n");
    let image = Image::kernel(&env.kernel, &initramfs).cmdline("panic=1");
    let mut vm = Vm::boot(&image, Opts::named("policy-malformed"));
    vm.expect(
        "ERROR: boot options: /etc/boot-policy: line 1: apkovl_require=maybe: expected any, \
         signed, encrypted or signed,encrypted",
    );
    vm.expect("rebooting in 1 s (panic=1)");
    vm.wait_poweroff();
    vm.refute("Mounting boot media");
}

/// Issue 13 item 6: `apkovl_verify=off` on the command line overrode the `required` that the
/// embedded overlay keys imply, so an unsigned overlay was applied. It is reported and ignored.
#[test]
fn command_line_cannot_loosen_the_signature_requirement() {
    let env = Env::get();
    let initramfs = env.initramfs(&InitramfsRecipe::standard());
    let disk = medium(
        "verify-off",
        "qemutest.apkovl.tar.gz",
        sample_overlay().tar_gz(),
        None,
    );
    let mut vm = boot("verify-off", &initramfs, &disk, "apkovl_verify=off");
    vm.expect(
        "WARNING: apkovl_verify=off ignored: the command line cannot loosen the overlay policy",
    );
    vm.expect(
        "ERROR: overlay: /media/vda1/qemutest.apkovl.tar.gz: signature check failed: unsigned, \
         and a signature is required by overlay keys in the initramfs (etc/apkovl/keys)",
    );
    stopped(&mut vm);
}

/// Issue 13 item 4: an overlay lbu encrypted to an age recipient (`AGE_RECIPIENTS`) boots with
/// the identity `mkinitfs --ovl-identity` embeds, without a prompt; without the identity the
/// boot says what is missing instead of asking three times for a passphrase that cannot work.
#[test]
fn overlay_encrypted_to_a_recipient_opens_with_the_embedded_identity() {
    let env = Env::get();
    let (identity, recipient) = env.age_identity();
    let enc = overlays::encrypt_age(
        &sample_overlay().tar_gz(),
        &overlays::AgeKey::Recipients(&[recipient]),
    )
    .expect("age");
    let sig = env.sign_overlay(&enc, "qemutest.apkovl.tar.gz.age");
    let disk = medium(
        "age-recipient",
        "qemutest.apkovl.tar.gz.age",
        enc,
        Some(sig),
    );
    let base = env.initramfs(&InitramfsRecipe::standard());
    let initramfs = env.initramfs_with(
        &base,
        &[(
            bootspec::initramfs::APKOVL_IDENTITY,
            identity.as_bytes(),
            0o600,
        )],
    );
    let mut vm = boot("age-recipient", &initramfs, &disk, "");
    vm.expect("apkovl signature verified (key overlay-test.pub)");
    vm.expect("decrypting with the initramfs's age identity");
    vm.expect("NEWROOT secret=from the overlay");
    vm.wait_poweroff();
    vm.refute("Enter passphrase");

    let disk = env.copy_medium(&disk, "age-recipient-no-identity");
    let mut vm = boot("age-recipient-no-identity", &base, &disk, "");
    vm.expect(
        "ERROR: overlay: /media/vda1/qemutest.apkovl.tar.gz.age: could not decrypt: encrypted to \
         an age recipient, and the initramfs holds no identity (etc/apkovl/identity; mkinitfs \
         --ovl-identity)",
    );
    stopped(&mut vm);
    vm.refute("Enter passphrase");
}

/// Issue 13 item 10: the bind mounts for package scripts went to the host path
/// `/sysroot/proc`, so an overlay planting `proc -> /` made the init mount over the initramfs's
/// own root. The mount point is now opened beneath the new root without following links.
#[test]
fn overlay_symlink_cannot_steer_the_bind_mounts() {
    let bytes = sample_overlay().symlink("proc", "/").tar_gz();
    let sig = Env::get().sign_overlay(&bytes, "qemutest.apkovl.tar.gz");
    let disk = medium("planted-proc", "qemutest.apkovl.tar.gz", bytes, Some(sig));
    let initramfs = Env::get().initramfs(&InitramfsRecipe::standard());
    let mut vm = boot("planted-proc", &initramfs, &disk, "");
    vm.expect(
        "ERROR: packages: /sysroot/proc: a symbolic link in the path; refusing to mount through it",
    );
    stopped(&mut vm);
}

/// Issue 13 item 10: the same for the moves at switch_root: `media -> /` would have sent the
/// boot medium's mount to the initramfs's `/usb`, which switch_root then deletes from under it.
#[test]
fn overlay_symlink_cannot_steer_the_moves_at_switch_root() {
    let bytes = sample_overlay().symlink("media", "/").tar_gz();
    let sig = Env::get().sign_overlay(&bytes, "qemutest.apkovl.tar.gz");
    let disk = medium("planted-media", "qemutest.apkovl.tar.gz", bytes, Some(sig));
    let initramfs = Env::get().initramfs(&InitramfsRecipe::standard());
    let mut vm = boot("planted-media", &initramfs, &disk, "");
    vm.expect(
        "ERROR: switch_root: /sysroot/media: a symbolic link in the path; refusing to mount \
         through it",
    );
    stopped(&mut vm);
}

/// Issue 13 item 12 (init side): what PID 1 reads from the medium is bounded; an oversized
/// detached signature is one clear error, not a read of whatever size the medium offers.
#[test]
fn oversized_signature_is_refused_before_it_is_read() {
    let disk = signed_plain("sig-oversized");
    vfat::write(
        &disk,
        "qemutest.apkovl.tar.gz.sig",
        &vec![b'#'; (64 << 10) + 1],
    );
    let initramfs = Env::get().initramfs(&InitramfsRecipe::standard());
    let mut vm = boot("sig-oversized", &initramfs, &disk, "");
    vm.expect(
        "ERROR: overlay: /media/vda1/qemutest.apkovl.tar.gz.sig: larger than the limit of 65536 \
         bytes",
    );
    stopped(&mut vm);
}

/// A medium whose current overlay is `qemutest`'s generation 3 (statement-signed), with the
/// generation file lbu writes beside it; `replace` then puts other bytes and `.sig` in its place,
/// as an attacker with the stick would.
fn generation_medium(run: &str, replace: Option<(Vec<u8>, String)>) -> PathBuf {
    let env = Env::get();
    let current = sample_overlay().tar_gz();
    let sig = env.sign_statement(&current, "qemutest", 3);
    let disk = medium(run, "qemutest.apkovl.tar.gz", current, Some(sig));
    vfat::write(
        &disk,
        &overlays::generation::file_name("qemutest"),
        &overlays::generation::render(3),
    );
    if let Some((bytes, sig)) = replace {
        vfat::write(&disk, "qemutest.apkovl.tar.gz", &bytes);
        vfat::write(&disk, "qemutest.apkovl.tar.gz.sig", sig.as_bytes());
    }
    disk
}

/// Issue 13 item 5, the baseline: the current overlay, signed for this host at the generation
/// the medium records, boots.
#[test]
fn current_signed_statement_boots() {
    let disk = generation_medium("statement-current", None);
    let initramfs = Env::get().initramfs(&InitramfsRecipe::standard());
    let mut vm = boot("statement-current", &initramfs, &disk, "");
    vm.expect("apkovl signature verified (key overlay-test.pub)");
    vm.expect("NEWROOT secret=from the overlay");
    vm.wait_poweroff();
}

/// Issue 13 item 5: an older signed overlay (a backup lbu kept, generation 2) renamed over the
/// current one verified, because the signature covered the bytes only. The medium records
/// generation 3: refused.
#[test]
fn replayed_older_overlay_is_refused() {
    let env = Env::get();
    let old = sample_overlay()
        .file("etc/secret.conf", "from an old commit\n")
        .tar_gz();
    let sig = env.sign_statement(&old, "qemutest", 2);
    let disk = generation_medium("statement-replayed", Some((old, sig)));
    let initramfs = env.initramfs(&InitramfsRecipe::standard());
    let mut vm = boot("statement-replayed", &initramfs, &disk, "");
    vm.expect(
        "ERROR: overlay: /media/vda1/qemutest.apkovl.tar.gz: signature check failed: apkovl for \
         host qemutest: generation 2 is older than generation 3 recorded on the medium, refusing \
         a replayed overlay",
    );
    stopped(&mut vm);
}

/// Issue 13 item 5: another host's signed overlay renamed to this host's name. Refused.
#[test]
fn overlay_of_another_host_is_refused() {
    let env = Env::get();
    let other = sample_overlay()
        .file("etc/secret.conf", "from fw2\n")
        .tar_gz();
    let sig = env.sign_statement(&other, "fw2", 9);
    let disk = generation_medium("statement-swapped", Some((other, sig)));
    let initramfs = env.initramfs(&InitramfsRecipe::standard());
    let mut vm = boot("statement-swapped", &initramfs, &disk, "");
    vm.expect(
        "ERROR: overlay: /media/vda1/qemutest.apkovl.tar.gz: signature check failed: apkovl for \
         host qemutest: signed for host fw2 (generation 9), refusing a swapped overlay",
    );
    stopped(&mut vm);
}

/// Review finding: nothing in the image named the host, so another host's overlay signed by the
/// same fleet key, put on the stick under its own name, booted this box as that host.
/// `mkinitfs --ovl-host` (the policy's `apkovl_host=`) pins it.
#[test]
fn an_image_pinned_to_its_host_refuses_another_hosts_overlay() {
    let env = Env::get();
    let other = sample_overlay()
        .file("etc/secret.conf", "from fw2\n")
        .tar_gz();
    let sig = env.sign_statement(&other, "fw2", 1);
    let disk = medium("host-pinned", "fw2.apkovl.tar.gz", other, Some(sig));
    let initramfs = with_policy("apkovl_host=qemutest\n");
    let mut vm = boot("host-pinned", &initramfs, &disk, "");
    vm.expect(
        "ERROR: overlay: /media/vda1/fw2.apkovl.tar.gz: refused: the overlay is for host fw2, and \
         this image boots only qemutest's (etc/boot-policy apkovl_host=qemutest)",
    );
    stopped(&mut vm);
}

/// Issue 13 item 5: round-1 signatures (bytes only) bind nothing; an image accepts them only
/// when built with `mkinitfs --ovl-legacy-sig` (the policy file's `apkovl_legacy_sig=yes`).
#[test]
fn legacy_signature_needs_the_image_compatibility_switch() {
    let env = Env::get();
    let bytes = sample_overlay().tar_gz();
    let sig = env.sign_legacy(&bytes);
    let disk = medium("legacy-refused", "qemutest.apkovl.tar.gz", bytes, Some(sig));
    let initramfs = env.initramfs(&InitramfsRecipe::standard());
    let mut vm = boot("legacy-refused", &initramfs, &disk, "");
    vm.expect(
        "ERROR: overlay: /media/vda1/qemutest.apkovl.tar.gz: signature check failed: apkovl for \
         host qemutest: round-1 signature binds no host or generation",
    );
    stopped(&mut vm);

    let disk = env.copy_medium(&disk, "legacy-accepted");
    let mut vm = boot(
        "legacy-accepted",
        &with_policy("apkovl_legacy_sig=yes\n"),
        &disk,
        "",
    );
    vm.expect("apkovl signature verified (key overlay-test.pub)");
    vm.expect("NEWROOT secret=from the overlay");
    vm.wait_poweroff();
}

/// A gzip'd tar holding one file of `size` zero bytes (a few MiB compressed for gigabytes),
/// made as a stream so the test never holds it whole.
fn zero_bomb(name: &str, size: u64) -> Vec<u8> {
    use std::io::Write;
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    let mut field = |at: usize, len: usize, value: u64| {
        let text = format!("{value:0width$o}\0", width = len - 1);
        header[at..at + len].copy_from_slice(text.as_bytes());
    };
    field(100, 8, 0o644);
    field(108, 8, 0);
    field(116, 8, 0);
    field(124, 12, size);
    field(136, 12, 1_700_000_000);
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&header).unwrap();
    let zeros = vec![0u8; 1 << 20];
    let mut left = size.div_ceil(512) * 512 + 1024;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        gz.write_all(&zeros[..n]).unwrap();
        left -= n as u64;
    }
    gz.finish().unwrap()
}

/// Issue 13 item 12: an accepted overlay could decompress to 1 GiB, copied again, which the
/// init (PID 1) cannot survive on a small box: here 1.5 GiB of zeros in a 1 GiB machine. The
/// bound gives one error line and the `panic=` path instead.
#[test]
fn overlay_decompressing_beyond_the_bound_is_an_error_not_an_abort() {
    let env = Env::get();
    let bytes = zero_bomb("etc/zeros", 3 << 29);
    let sig = env.sign_overlay(&bytes, "qemutest.apkovl.tar.gz");
    let disk = medium("overlay-bomb", "qemutest.apkovl.tar.gz", bytes, Some(sig));
    let initramfs = env.initramfs(&InitramfsRecipe::standard());
    let mut vm = boot("overlay-bomb", &initramfs, &disk, "");
    vm.expect("apkovl signature verified (key overlay-test.pub)");
    vm.expect(&format!(
        "ERROR: overlay: /media/vda1/qemutest.apkovl.tar.gz: overlay: archive larger than the \
         limit of {} bytes",
        overlays::MAX_UNPACKED_BYTES
    ));
    stopped(&mut vm);
    vm.refute("Out of memory");
}
