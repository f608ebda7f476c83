//! The appliance, end to end (issue: appliance): boot, configure, `lbu commit`, reboot; power
//! cuts during commits; tampered overlays and packages; ISO and USB media; an encrypted overlay
//! opened on the serial console; an overlay made the way Alpine's own lbu makes it.

use qemu_tests::http::Server;
use qemu_tests::{
    Disk, Env, Image, InitramfsRecipe, MediumFormat, MediumRecipe, Net, Opts, Overlay, Vm,
};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn recipe(world: &[&str], overlay: Option<(String, Vec<u8>, Option<String>)>) -> MediumRecipe {
    let env = Env::get();
    MediumRecipe {
        uki: qemu_tests::UkiRecipe::None,
        format: MediumFormat::Vfat,
        world: world.iter().map(|s| s.to_string()).collect(),
        project_repo: world.contains(&"lbu"),
        world_extra: vec![],
        label: "ALPINE".into(),
        cmdline: "modloop=none".into(),
        initramfs: env.initramfs(&InitramfsRecipe::standard()),
        overlay,
    }
}

fn signed(name: &str, ovl: &Overlay) -> Option<(String, Vec<u8>, Option<String>)> {
    let bytes = ovl.tar_gz();
    let sig = Env::get().sign_overlay(&bytes, name);
    Some((name.to_string(), bytes, Some(sig)))
}

fn boot(name: &str, disks: &[Disk], cmdline: &str, nets: &[Net]) -> Vm {
    let env = Env::get();
    let initramfs = env.initramfs(&InitramfsRecipe::standard());
    let mut image =
        Image::kernel(&env.kernel, &initramfs).cmdline(&format!("modloop=none {cmdline}"));
    for d in disks {
        image = image.disk(d.clone());
    }
    let mut opts = Opts::named(name);
    opts.nets = nets.to_vec();
    Vm::boot(&image, opts)
}

/// The lbu configuration of the test appliances: commits go to the boot medium, signed with the
/// overlay key. (The key travels in the overlay here only because this is a test: a signing key
/// stored on the medium protects nothing, see the README.)
fn lbu_setup(ovl: Overlay) -> Overlay {
    let key = std::fs::read(&Env::get().keys().overlay_key).expect("overlay key");
    ovl.file(
        "etc/lbu/lbu.conf",
        "LBU_MEDIA=usb\nSIGNING_KEY=/etc/lbu/qemutest.key\nBACKUP_LIMIT=2\n",
    )
    .file_mode("etc/lbu/qemutest.key", key, 0o600)
    // lbu saves only symlinks under etc/init.d (`@etc/init.d`): the test service must be
    // included explicitly to survive a commit, as a user would with `lbu include`.
    .file(
        "etc/apk/protected_paths.d/lbu.list",
        "+etc/init.d/qemutest\n",
    )
}

fn mtools(args: &[&str], image: &Path) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .arg("-i")
        .arg(image)
        .output()
        .expect("mtools (make deps)");
    let _ = out;
}

/// Copy a file out of a vfat image, let `f` change it, copy it back.
fn edit_in_image(image: &Path, path: &str, f: impl FnOnce(&mut Vec<u8>)) {
    let tmp = image.with_extension("edit");
    let volume = format!("{}{}", image.display(), qemu_tests::vfat::PARTITION);
    let st = Command::new("mcopy")
        .arg("-n")
        .arg("-i")
        .arg(&volume)
        .arg(format!("::/{path}"))
        .arg(&tmp)
        .status()
        .unwrap();
    assert!(st.success(), "mcopy out {path}");
    let mut data = std::fs::read(&tmp).unwrap();
    f(&mut data);
    std::fs::write(&tmp, &data).unwrap();
    let st = Command::new("mcopy")
        .arg("-o")
        .arg("-i")
        .arg(&volume)
        .arg(&tmp)
        .arg(format!("::/{path}"))
        .status()
        .unwrap();
    assert!(st.success(), "mcopy in {path}");
    let _ = std::fs::remove_file(tmp);
}

/// A port on 127.0.0.1 that is free now and, usually, the same from run to run (the overlay that
/// names it is then cached with its medium).
fn http_server(root: &Path) -> Server {
    Server::start(root)
}

/// Scenario 1: boot 1 configures the appliance, installs dhcpcd from a remote repository (which
/// Alpine's apk keeps in the medium's cache), and commits; boot 2 finds every change, the deletion
/// too, gets dhcpcd from the cache without any network, and the overlay signature verified.
#[test]
fn appliance_life_cycle() {
    let env = Env::get();
    let server = http_server(&env.shared.join("fixtures/alpine-3.19.1"));
    let url = format!("http://10.0.2.2:{}/apks", server.port);
    let script = r#"
if [ ! -f /etc/qemutest-boot1 ]; then
    echo LIFECYCLE-BOOT1
    ip link set eth0 up
    udhcpc -i eth0 -n -q -t 20 >/dev/null 2>&1 || echo DHCP-FAILED
    mount -o remount,rw /media/usb
    mkdir -p /media/usb/cache
    echo appliance > /etc/hostname
    printf 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n' > /etc/network/interfaces
    adduser -D -g "Test User" tester && echo USER-ADDED
    echo "Welcome to the test appliance" > /etc/motd
    rm -f /etc/issue
    apk add dhcpcd && echo APK-ADD-OK
    ls /media/usb/cache | sed 's/^/CACHE:/'
    touch /etc/qemutest-boot1
    lbu commit && echo LBU-COMMIT-OK
    ls /media/usb | sed 's/^/MEDIA:/'
else
    echo LIFECYCLE-BOOT2
    echo "HOSTNAME=$(hostname)"
    sed 's/^/IF:/' /etc/network/interfaces
    grep -q '^tester:' /etc/passwd && echo USER-OK
    echo "MOTD=$(cat /etc/motd)"
    if [ -e /etc/issue ]; then echo ISSUE-BACK; else echo ISSUE-GONE; fi
    apk info -e dhcpcd >/dev/null && echo DHCPCD-INSTALLED
    ls /sbin/dhcpcd >/dev/null && echo DHCPCD-BINARY
fi
echo QEMUTEST-DONE
sync
poweroff -f
"#;
    let ovl = lbu_setup(Overlay::new())
        .file("etc/hostname", "qemutest\n")
        .world(&["alpine-base", "chrony", "lbu", "openssh"])
        .file("etc/apk/repositories", format!("/media/usb/apks\n{url}\n"))
        .symlink("etc/apk/cache", "/media/usb/cache")
        .scenario(script);
    let medium = env.medium(&recipe(
        &["alpine-base", "openssh", "chrony", "lbu"],
        signed("qemutest.apkovl.tar.gz", &ovl),
    ));
    let disk = env.copy_medium(&medium, "life-cycle");

    let mut vm = boot(
        "life-cycle-1",
        &[Disk::virtio(disk.clone())],
        "",
        &[Net::user()],
    );
    vm.expect("apkovl signature verified (key overlay-test.pub)");
    vm.expect("Installing lbu (");
    vm.expect("LIFECYCLE-BOOT1");
    vm.expect("USER-ADDED");
    vm.expect("APK-ADD-OK");
    vm.expect("CACHE:dhcpcd-10.0.5-r0.");
    vm.expect("LBU-COMMIT-OK");
    vm.expect("MEDIA:qemutest.apkovl.tar.gz.sig");
    vm.expect("QEMUTEST-DONE");
    vm.wait_poweroff();
    drop(server);

    // Boot 2: same disk, no network at all.
    let mut vm = boot("life-cycle-2", &[Disk::virtio(disk)], "", &[]);
    vm.expect("apkovl signature verified (key overlay-test.pub)");
    vm.expect("Installing dhcpcd (10.0.5-r0)");
    vm.expect("boot timeline");
    // Its last row: the whole block has arrived.
    vm.expect("kernel start -> now");
    let tl = vm.timeline().unwrap_or_default();
    assert!(tl.contains("signature verified"), "timeline:\n{tl}");
    vm.expect("LIFECYCLE-BOOT2");
    vm.expect("HOSTNAME=appliance");
    vm.expect("IF:iface eth0 inet dhcp");
    vm.expect("USER-OK");
    vm.expect("MOTD=Welcome to the test appliance");
    vm.expect("ISSUE-GONE");
    vm.expect("DHCPCD-INSTALLED");
    vm.expect("DHCPCD-BINARY");
    vm.expect("QEMUTEST-DONE");
    vm.wait_poweroff();
}

/// Scenario 2: power cuts at many points of a loop of `lbu commit`s, in the sequences whose crash
/// windows issue 13 item 8 closed: a medium lbu remounts itself (`plain`), one already mounted
/// read-write so lbu does not remount it (`rw`: its writes must still be synchronous), `commit -d`
/// replacing the overlay of another host name (`rename`), and signing turned off and on again
/// (`nosig`). After every cut the medium is read on the host: never two overlays, a `.sig` that
/// verifies for the host in the overlay's name at a generation the medium's record accepts, an
/// unsigned overlay only where signing was off, no overlay only inside `-d`'s documented window
/// (the previous one is then a signed backup). Every following boot must find the overlay and its
/// signature verified.
#[test]
fn power_cut_during_commit() {
    let env = Env::get();
    let script = r#"
mode=plain
for w in $(cat /proc/cmdline); do
    case "$w" in qemutest_mode=*) mode=${w#qemutest_mode=} ;; esac
done
echo "COUNTER=$(cat /etc/counter 2>/dev/null || echo none)"
case "$mode" in
rw) mount -o remount,rw /media/usb && echo MEDIUM-RW ;;
nosig) sed -i '/^SIGNING_KEY=/d' /etc/lbu/lbu.conf ;;
esac
echo "COMMIT-LOOP $mode"
i=0
while true; do
    i=$((i+1))
    echo "$i" > /etc/counter
    case "$mode" in
    rename)
        if [ $((i % 2)) = 1 ]; then hostname qemutest2; else hostname qemutest; fi
        lbu commit -d ;;
    nosig)
        if [ $((i % 2)) = 1 ]; then lbu commit -d
        else SIGNING_KEY=/etc/lbu/qemutest.key lbu commit -d; fi ;;
    *) lbu commit ;;
    esac && echo "COMMITTED-$i"
done
"#;
    // The loop runs as the system's init (`init=`), not under OpenRC: every boot of this test only
    // has to reach `lbu commit`, and a dozen full OpenRC starts under TCG would cost minutes.
    // lbu never saves the file `SIGNING_KEY` names (issue 13 item 2), so without a copy that
    // travels under another name the commits of every boot after the first one failed for want
    // of the key. (Test only: a key stored in the overlay protects nothing.)
    let key = std::fs::read(&env.keys().overlay_key).expect("overlay key");
    let ovl = lbu_setup(Overlay::new())
        .file("etc/hostname", "qemutest\n")
        .world(&["alpine-base", "lbu"])
        .file_mode("etc/qemutest-key-copy", key, 0o600)
        .file_mode(
            "etc/qemutest-init",
            "#!/bin/sh\nhostname -F /etc/hostname\ncp -p /etc/qemutest-key-copy /etc/lbu/qemutest.key\nexec /etc/qemutest.sh\n",
            0o755,
        )
        .file_mode("etc/qemutest.sh", format!("#!/bin/sh\n{script}\n"), 0o755);
    let medium = env.medium(&recipe(
        &["alpine-base", "lbu"],
        signed("qemutest.apkovl.tar.gz", &ovl),
    ));
    let disk = env.copy_medium(&medium, "power-cut");
    // Cut times: the even boots count from the start of the loop (often inside the first
    // commit), the odd ones from the end of the boot's first commit (inside a later one). Waiting
    // for a commit rather than a fixed time keeps the cuts among commits however slow the host.
    // `nosig` comes last: its commits leave lbu.conf without a signing key.
    let cuts = [
        ("plain", 30u64),
        ("plain", 200),
        ("plain", 450),
        ("rw", 700),
        ("rw", 1000),
        ("rename", 1400),
        ("rename", 1900),
        ("rename", 2500),
        ("nosig", 3200),
        ("nosig", 4000),
        ("nosig", 600),
    ];
    let mut commits_seen = 0;
    for (k, (mode, cut)) in cuts.iter().enumerate() {
        let mut vm = boot(
            &format!("power-cut-{k}"),
            &[Disk::virtio(disk.clone())],
            &format!("init=/etc/qemutest-init qemutest_mode={mode}"),
            &[],
        );
        vm.expect("apkovl signature verified (key overlay-test.pub)");
        vm.expect(&format!("COMMIT-LOOP {mode}"));
        if k % 2 == 1 {
            vm.expect("COMMITTED-");
        }
        std::thread::sleep(Duration::from_millis(*cut));
        vm.power_cut();
        let text = vm.text();
        if text.contains("Problems creating archive") {
            vm.fail(&format!("{mode}: a commit failed"));
        }
        commits_seen += text.matches("COMMITTED-").count();
        check_after_cut(&disk, &format!("power-cut-{k} ({mode})"), mode);
    }
    assert!(
        commits_seen > 0,
        "no commit completed before the cuts: the cuts did not interrupt commits"
    );
}

/// The top-level files of a vfat medium, copied into a fresh directory.
fn medium_files(image: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // Directories (listed with a trailing `/`) are skipped: only the overlays, signatures and
    // records matter here.
    for name in qemu_tests::vfat::list(image) {
        if name.ends_with('/') || name.contains('/') {
            continue;
        }
        // lbu's temporary files (`.lbu-PID-N.tmp`, lbu/src/durable.rs): a cut while one is
        // written can leave its FAT chain half made, which mtools refuses to read ("Fat problem
        // while decoding"); nothing reads them (a later commit skips their names), and the checks
        // below look at overlays, signatures and generation records only.
        if name.starts_with(".lbu-") && name.ends_with(".tmp") {
            continue;
        }
        std::fs::write(dir.path().join(&name), qemu_tests::vfat::read(image, &name)).unwrap();
    }
    dir
}

/// The medium after a power cut during `mode`'s commits (see [`power_cut_during_commit`]). When
/// the cut left what the next boot of this test cannot use by design (an unsigned overlay after
/// a commit with signing off; no overlay inside `-d`'s window), the medium is put back the way
/// the admin would: the unsigned overlay signed, the backup renamed to the overlay's name.
fn check_after_cut(image: &Path, what: &str, mode: &str) {
    let env = Env::get();
    let keys = &env.keys().overlay_pub;
    let files = medium_files(image);
    let dir = files.path();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let verified = |name: &str, host: &str| -> Result<overlays::Statement, String> {
        let data = std::fs::read(dir.join(name)).unwrap();
        let sig = std::fs::read(dir.join(format!("{name}.sig"))).ok();
        let v = overlays::verify(&data, sig.as_deref(), keys);
        let recorded = overlays::generation::read(dir, host).map_err(|e| e.to_string())?;
        overlays::check_binding(&v, host, recorded, false).map_err(|e| e.to_string())?;
        match v {
            overlays::Verification::Verified {
                statement: Some(s), ..
            } => Ok(s),
            other => Err(format!("{other:?}")),
        }
    };
    let current: Vec<&String> = names
        .iter()
        .filter(|n| !n.starts_with('.') && overlays::kind_of(n).is_some())
        .collect();
    assert!(current.len() <= 1, "{what}: two overlays: {names:?}");
    if let Some(name) = current.first() {
        let host = overlays::host_of(name).unwrap();
        if names.contains(&format!("{name}.sig")) || mode != "nosig" {
            if let Err(e) = verified(name, host) {
                panic!("{what}: {name}: {e}; medium: {names:?}");
            }
            return;
        }
        // Signing was off for the commit that completed: what the admin does next is sign it.
        let data = std::fs::read(dir.join(name.as_str())).unwrap();
        let generation = overlays::generation::read(dir, host).unwrap().unwrap_or(1);
        let sig = env.sign_statement(&data, host, generation);
        qemu_tests::vfat::write(image, &format!("{name}.sig"), sig.as_bytes());
        return;
    }
    // No overlay: only `-d` has that window (the others are moved aside before the new one
    // enters), and the one moved aside is a backup whose signature holds (its `.sig` moved with
    // it, or still under the overlay's name when the cut fell between the two renames).
    assert_eq!(mode, "rename", "{what}: no overlay left: {names:?}");
    let restore = names
        .iter()
        .filter(|n| n.ends_with(".tar.gz") && !n.contains(".apkovl."))
        .find_map(|n| {
            let host = n.split('.').next().unwrap_or_default();
            let data = std::fs::read(dir.join(n)).unwrap();
            let recorded = overlays::generation::read(dir, host).ok()?;
            [format!("{n}.sig"), format!("{host}.apkovl.tar.gz.sig")]
                .into_iter()
                .find(|sig| {
                    let sig = std::fs::read(dir.join(sig)).ok();
                    let v = overlays::verify(&data, sig.as_deref(), keys);
                    matches!(
                        v,
                        overlays::Verification::Verified {
                            statement: Some(_),
                            ..
                        }
                    ) && overlays::check_binding(&v, host, recorded, false).is_ok()
                })
                .map(|sig| (n.clone(), sig, host.to_string()))
        });
    let Some((backup, sig, host)) = restore else {
        panic!("{what}: no overlay and no backup whose signature holds: {names:?}");
    };
    let current = format!("{host}.apkovl.tar.gz");
    for (from, to) in [(backup, current.clone()), (sig, format!("{current}.sig"))] {
        if from == to {
            continue;
        }
        qemu_tests::vfat::rename(image, &from, &to);
    }
    check_after_cut(image, &format!("{what}, backup restored"), "restored");
}

/// Scenario 3a: a flipped byte in the overlay on the medium is refused before anything of it is
/// used; without a rescue shell the boot follows `panic=`.
#[test]
fn tampered_overlay_is_refused() {
    let env = Env::get();
    let ovl = Overlay::new()
        .world(&["alpine-base"])
        .scenario("echo SHOULD-NOT-RUN; poweroff -f");
    let medium = env.medium(&recipe(
        &["alpine-base"],
        signed("qemutest.apkovl.tar.gz", &ovl),
    ));
    let disk = env.copy_medium(&medium, "tampered-overlay");
    edit_in_image(&disk, "qemutest.apkovl.tar.gz", |d| {
        let n = d.len();
        d[n / 2] ^= 0x01;
    });
    let mut vm = boot("tampered-overlay", &[Disk::virtio(disk)], "panic=1", &[]);
    vm.expect("ERROR: overlay: /media/vda1/qemutest.apkovl.tar.gz: signature check failed");
    vm.expect("boot timeline");
    vm.expect("rebooting in 1 s (panic=1)");
    vm.wait_poweroff();
    vm.refute("SHOULD-NOT-RUN");
    vm.refute("Installing");
}

/// Scenario 3b: a flipped byte in a package: the install refuses that package and names it.
#[test]
fn tampered_package_is_refused() {
    let env = Env::get();
    let ovl = Overlay::new()
        .world(&["alpine-base"])
        .scenario("echo SHOULD-NOT-RUN; poweroff -f");
    let medium = env.medium(&recipe(
        &["alpine-base"],
        signed("qemutest.apkovl.tar.gz", &ovl),
    ));
    let disk = env.copy_medium(&medium, "tampered-package");
    edit_in_image(&disk, "apks/x86_64/busybox-1.36.1-r15.apk", |d| {
        let n = d.len();
        d[n - 100] ^= 0x01;
    });
    let mut vm = boot("tampered-package", &[Disk::virtio(disk)], "panic=1", &[]);
    vm.expect("ERROR: busybox-1.36.1-r15: v2 package integrity error");
    vm.expect("ERROR: packages: install");
    vm.expect("rebooting in 1 s (panic=1)");
    vm.wait_poweroff();
    vm.refute("SHOULD-NOT-RUN");
}

/// Scenario 4a: the same system from an ISO 9660 image on a CD-ROM drive.
#[test]
fn boots_from_iso() {
    let env = Env::get();
    let ovl = Overlay::new()
        .world(&["alpine-base"])
        .scenario("echo QEMUTEST-UP; mount | grep /media/cdrom | sed 's/^/MNT:/'; poweroff -f");
    let mut r = recipe(&["alpine-base"], signed("qemutest.apkovl.tar.gz", &ovl));
    r.format = MediumFormat::Iso;
    let iso = env.medium(&r);
    let mut vm = boot("iso", &[Disk::cdrom(iso)], "", &[]);
    vm.expect("sr0: iso9660 LABEL=ALPINE");
    vm.expect("apkovl signature verified");
    vm.expect("OK: 10.2 MiB in 25 packages");
    vm.expect("QEMUTEST-UP");
    vm.expect("MNT:");
    vm.expect("/media/cdrom");
    vm.wait_poweroff();
}

/// Scenario 4b: `alpine_dev=LABEL=...` picks the stick by its label even when another medium with
/// a boot repository and an overlay is attached first.
#[test]
fn usb_stick_found_by_label() {
    let env = Env::get();
    let decoy_ovl = Overlay::new()
        .world(&["alpine-base"])
        .scenario("echo DECOY-BOOTED; poweroff -f");
    let decoy = env.medium(&recipe(
        &["alpine-base"],
        signed("decoy.apkovl.tar.gz", &decoy_ovl),
    ));
    let ovl = Overlay::new()
        .world(&["alpine-base"])
        .scenario("echo STICK-BOOTED; poweroff -f");
    let mut r = recipe(&["alpine-base"], signed("stick.apkovl.tar.gz", &ovl));
    r.label = "APPLIANCE".into();
    let stick = env.medium(&r);
    let (d1, d2) = (
        env.copy_medium(&decoy, "label-decoy"),
        env.copy_medium(&stick, "label-stick"),
    );
    let mut vm = boot(
        "usb-label",
        &[Disk::virtio(d1), Disk::virtio(d2)],
        "alpine_dev=LABEL=APPLIANCE",
        &[],
    );
    vm.expect("LABEL=APPLIANCE");
    vm.expect("STICK-BOOTED");
    vm.wait_poweroff();
    vm.refute("DECOY-BOOTED");
}

/// Scenario 5: an age-encrypted overlay; the passphrase is typed on the serial console (a wrong
/// one first).
#[test]
fn encrypted_overlay_with_console_passphrase() {
    let env = Env::get();
    let ovl = Overlay::new()
        .world(&["alpine-base"])
        .file("etc/secret.conf", "only with the passphrase\n")
        .scenario("echo \"SECRET=$(cat /etc/secret.conf)\"; poweroff -f");
    let plain = ovl.tar_gz();
    let enc = overlays::encrypt_age(
        &plain,
        &overlays::AgeKey::Passphrase {
            passphrase: "correct horse",
            work_factor: Some(10),
        },
    )
    .expect("age");
    let sig = env.sign_overlay(&enc, "qemutest.apkovl.tar.gz.age");
    let medium = env.medium(&recipe(
        &["alpine-base"],
        Some(("qemutest.apkovl.tar.gz.age".into(), enc, Some(sig))),
    ));
    let disk = env.copy_medium(&medium, "age");
    let mut vm = boot("age", &[Disk::virtio(disk)], "", &[]);
    // The signature covers the encrypted bytes: it is checked before any passphrase is asked.
    vm.expect("apkovl signature verified");
    vm.expect("Enter passphrase for /media/vda1/qemutest.apkovl.tar.gz.age: ");
    vm.send("wrong horse");
    vm.expect("wrong passphrase");
    vm.expect("Enter passphrase for /media/vda1/qemutest.apkovl.tar.gz.age: ");
    vm.send("correct horse");
    vm.expect("SECRET=only with the passphrase");
    // Issue 13: the prompt said "Enter passphrase for Enter passphrase for ...".
    vm.refute("Enter passphrase for Enter passphrase for");
    vm.wait_poweroff();
}

/// Scenario 6: an apkovl made the way Alpine's lbu makes it (busybox tar, gzip, no signature),
/// booted with `apkovl_verify=off`.
#[test]
fn alpine_made_overlay_restores() {
    let env = Env::get();
    let stage = env.assets.join("alpine-made-overlay");
    let _ = std::fs::remove_dir_all(&stage);
    for d in ["etc/init.d", "etc/runlevels/default", "etc/apk"] {
        std::fs::create_dir_all(stage.join(d)).unwrap();
    }
    std::fs::write(stage.join("etc/hostname"), "alpinemade\n").unwrap();
    std::fs::write(stage.join("etc/apk/world"), "alpine-base\n").unwrap();
    std::fs::write(stage.join("etc/.default_boot_services"), "").unwrap();
    let svc = "#!/sbin/openrc-run\ndepend() {\n\tafter *\n}\nstart() {\n\techo \"HOST=$(hostname)\" >/dev/console\n\tpoweroff -f\n}\n";
    std::fs::write(stage.join("etc/init.d/qemutest"), svc).unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(stage.join("etc/init.d/qemutest"))
        .status()
        .unwrap();
    std::os::unix::fs::symlink(
        "/etc/init.d/qemutest",
        stage.join("etc/runlevels/default/qemutest"),
    )
    .unwrap();
    // lbu: `tar -c -f - <list>` from /, busybox tar, gzip -9 (lbu.md §5, §9).
    let out = env.assets.join("alpine-made.apkovl.tar.gz");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {} && /bin/busybox tar -c -f - etc/hostname etc/apk/world etc/.default_boot_services etc/init.d/qemutest etc/runlevels/default/qemutest | gzip -9 > {}",
            stage.display(),
            out.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let bytes = std::fs::read(&out).unwrap();
    let medium = env.medium(&recipe(
        &["alpine-base"],
        Some(("alpinemade.apkovl.tar.gz".into(), bytes, None)),
    ));
    let disk = env.copy_medium(&medium, "alpine-made");
    // Booted with apkovl_verify=off, which cannot loosen an image that embeds overlay keys: this
    // initramfs has none, as an image for Alpine-made overlays would be built.
    let initramfs = env.initramfs(&InitramfsRecipe {
        overlay_keys: false,
        ..InitramfsRecipe::standard()
    });
    let image = Image::kernel(&env.kernel, &initramfs)
        .cmdline("modloop=none apkovl_verify=off")
        .disk(Disk::virtio(disk));
    let mut vm = Vm::boot(&image, Opts::named("alpine-made"));
    vm.expect("Loading user settings from /media/vda1/alpinemade.apkovl.tar.gz");
    vm.expect("HOST=alpinemade");
    vm.wait_poweroff();
    let _ = mtools;
}
