//! Netboot (issue 12): the init brings up the network (DHCP or a static `ip=`, the interface
//! chosen by `BOOTIF=`) and installs from a remote repository over HTTP, served by a loopback
//! server the guest reaches as 10.0.2.2 on qemu's user network. No medium at all: the kernel and
//! the initramfs come from `-kernel/-initrd`.

use qemu_tests::http::{Server, TestCa};
use qemu_tests::{Env, Image, InitramfsRecipe, Net, Opts, Overlay, Vm};

/// The standard initramfs with a signed overlay at `/qemutest.apkovl.tar.gz` (booted with
/// `apkovl=/qemutest.apkovl.tar.gz`): the remote install gets a world and a scenario.
fn initramfs_with_overlay(overlay: Overlay) -> std::path::PathBuf {
    let env = Env::get();
    let ovl = overlay.tar_gz();
    let sig = env.sign_overlay(&ovl, "qemutest.apkovl.tar.gz");
    env.initramfs_with(
        &env.initramfs(&InitramfsRecipe::standard()),
        &[
            ("qemutest.apkovl.tar.gz", &ovl, 0o644),
            ("qemutest.apkovl.tar.gz.sig", sig.as_bytes(), 0o644),
        ],
    )
}

/// `ip=dhcp` and `alpine_repo=http://...`: the lease (address, router, DNS) from qemu's DHCP
/// server, alpine-base's 25 packages downloaded from the server and verified with the
/// initramfs's keys, OpenRC reached, the name servers and the repository URL in the new root,
/// the network phases in the timeline.
#[test]
fn dhcp_and_a_remote_repository_boot_alpine_base() {
    let env = Env::get();
    let server = Server::start(env.alpine_repo().parent().unwrap());
    let repo = format!("http://10.0.2.2:{}/apks", server.port);
    let script = "echo QEMUTEST-UP\n\
        echo PKGCOUNT=$(apk info | wc -l)\n\
        sed 's/^/RESOLV:/' /etc/resolv.conf\n\
        sed 's/^/REPO:/' /etc/apk/repositories\n\
        ip -4 addr show eth0 | sed -n 's/^ *inet /ADDR:/p'\n\
        ip route | sed 's/^/ROUTE:/'\n\
        sed 's/^/TL:/' /var/log/boot-timeline.txt\n\
        echo QEMUTEST-DONE\n\
        sync; poweroff -f";
    let initramfs = initramfs_with_overlay(Overlay::new().world(&["alpine-base"]).scenario(script));
    let image = Image::kernel(&env.kernel, &initramfs).cmdline(&format!(
        "modloop=none panic=1 ip=dhcp alpine_repo={repo} apkovl=/qemutest.apkovl.tar.gz"
    ));
    let mut vm = Vm::boot(
        &image,
        Opts::named("netboot-dhcp").net(Net::user().mac("52:54:00:12:34:01")),
    );
    vm.expect("Obtaining IP via DHCP (eth0)");
    vm.expect("eth0: 10.0.2.15/24, router 10.0.2.2, DNS 10.0.2.3");
    vm.expect("apkovl signature verified (key overlay-test.pub)");
    vm.expect(&format!("boot repository {repo}"));
    vm.expect("(25/25) Installing alpine-base (3.19.1-r0)");
    vm.expect("OpenRC 0.52.1 is starting up");
    vm.expect("QEMUTEST-UP");
    vm.expect("PKGCOUNT=25");
    vm.expect("RESOLV:nameserver 10.0.2.3");
    vm.expect(&format!("REPO:{repo}"));
    vm.expect("ADDR:10.0.2.15/24");
    vm.expect("ROUTE:default via 10.0.2.2 dev eth0");
    vm.expect("TL:  network link");
    vm.expect("eth0 52:54:00:12:34:01, link after");
    vm.expect("TL:  dhcp");
    vm.expect("10.0.2.15/24 from 10.0.2.2, lease 86400 s");
    vm.expect("QEMUTEST-DONE");
    vm.wait_poweroff();
    let log = server.log.lock().unwrap().clone();
    assert!(
        log.contains(&"/apks/x86_64/APKINDEX.tar.gz".to_string()),
        "{log:?}"
    );
    assert!(
        log.contains(&"/apks/x86_64/alpine-base-3.19.1-r0.apk".to_string()),
        "{log:?}"
    );
}

/// Two cards: `BOOTIF=` picks the second, a static `ip=` configures it (no DHCP), and the boot
/// installs from the server through it; the first card is left down.
#[test]
fn bootif_picks_the_card_and_a_static_address_is_used() {
    let env = Env::get();
    let server = Server::start(env.alpine_repo().parent().unwrap());
    let repo = format!("http://10.0.2.2:{}/apks", server.port);
    let script = "echo QEMUTEST-UP\n\
        ip -4 addr show eth1 | sed -n 's/^ *inet /ADDR1:/p'\n\
        echo ETH0-$(cat /sys/class/net/eth0/operstate)\n\
        sed 's/^/RESOLV:/' /etc/resolv.conf\n\
        echo QEMUTEST-DONE\n\
        sync; poweroff -f";
    let initramfs = initramfs_with_overlay(Overlay::new().world(&["alpine-base"]).scenario(script));
    let image = Image::kernel(&env.kernel, &initramfs).cmdline(&format!(
        "modloop=none panic=1 alpine_repo={repo} apkovl=/qemutest.apkovl.tar.gz \
         BOOTIF=01-52-54-00-12-34-22 ip=10.0.2.20::10.0.2.2:255.255.255.0::::10.0.2.3"
    ));
    let mut vm = Vm::boot(
        &image,
        Opts::named("netboot-bootif-static")
            .net(Net::user().mac("52:54:00:12:34:11"))
            .net(Net::user().id("net1").mac("52:54:00:12:34:22")),
    );
    vm.expect("Setting IP (eth1)");
    vm.expect("eth1: 10.0.2.20/24, router 10.0.2.2, DNS 10.0.2.3");
    vm.expect("(25/25) Installing alpine-base (3.19.1-r0)");
    vm.expect("QEMUTEST-UP");
    vm.expect("ADDR1:10.0.2.20/24");
    vm.expect("ETH0-down");
    vm.expect("RESOLV:nameserver 10.0.2.3");
    vm.expect("QEMUTEST-DONE");
    vm.wait_poweroff();
    vm.refute("Obtaining IP via DHCP");
}

/// A card on no network: no DHCP server answers; after the bounded retries one line names the
/// option, the interface and the wait, then `panic=1` reboots.
#[test]
fn no_lease_fails_clearly() {
    let env = Env::get();
    let initramfs = env.initramfs(&InitramfsRecipe::standard());
    let image = Image::kernel(&env.kernel, &initramfs)
        .cmdline("modloop=none panic=1 alpine_repo=http://10.0.2.2:9/apks");
    let mut opts = Opts::named("netboot-no-lease");
    // A card whose network has no other end.
    opts.extra.extend([
        "-device".into(),
        "virtio-net-pci,mac=52:54:00:12:34:33".into(),
    ]);
    let mut vm = Vm::boot(&image, opts);
    vm.expect("Obtaining IP via DHCP (eth0)");
    vm.expect("retrying (attempt 2 of 5)");
    vm.expect(
        "ERROR: dhcp: alpine_repo=http://10.0.2.2:9/apks: no DHCP lease on eth0 after 5 attempts (30 s)",
    );
    vm.expect("boot timeline");
    vm.expect("rebooting in 1 s (panic=1)");
    vm.wait_poweroff();
    vm.refute("Kernel panic");
}

/// The `init=` of the overlay scenarios below: reports the host name and the overlay's file, then
/// powers off (no OpenRC: a boot costs the install only).
const FLEET_INIT: &str = "#!/bin/sh\n\
    echo \"FLEET host=$(cat /etc/hostname) id=$(cat /etc/fleet-id)\"\n\
    sync\n\
    poweroff -f\n";

/// A host's overlay: its host name, a file of its own, alpine-base, the report init, and the same
/// report from OpenRC's default runlevel for a boot without `init=`.
fn fleet_overlay(host: &str) -> Vec<u8> {
    Overlay::new()
        .file("etc/hostname", format!("{host}\n"))
        .file("etc/fleet-id", format!("id-{host}\n"))
        .world(&["alpine-base"])
        .file_mode("etc/fleet-report", FLEET_INIT, 0o755)
        .scenario(
            "echo \"FLEET-OPENRC host=$(hostname) id=$(cat /etc/fleet-id)\"\nsync; poweroff -f",
        )
        .tar_gz()
}

/// Puts `bytes` and `sig` at `dir/MAC.apkovl.tar.gz[.sig]`.
fn publish(dir: &std::path::Path, mac: &str, bytes: &[u8], sig: &str) {
    std::fs::write(dir.join(format!("{mac}.apkovl.tar.gz")), bytes).unwrap();
    std::fs::write(dir.join(format!("{mac}.apkovl.tar.gz.sig")), sig).unwrap();
}

/// Boots `mac` with `apkovl=http://.../ovl/{MAC}.apkovl.tar.gz` (from `ovl_port`) and the
/// packages from `repo`.
fn boot_fleet_member(name: &str, mac: &str, repo: &str, ovl_port: u16) -> Vm {
    boot_fleet_member_from(
        name,
        mac,
        &InitramfsRecipe::standard(),
        repo,
        &format!("http://10.0.2.2:{ovl_port}/ovl"),
    )
}

/// Boots `mac` from the initramfs `recipe` makes, with `apkovl=OVL/{MAC}.apkovl.tar.gz` and the
/// packages from `repo`.
fn boot_fleet_member_from(
    name: &str,
    mac: &str,
    recipe: &InitramfsRecipe,
    repo: &str,
    ovl: &str,
) -> Vm {
    let env = Env::get();
    let image = Image::kernel(&env.kernel, env.initramfs(recipe)).cmdline(&format!(
        "modloop=none panic=1 ip=dhcp alpine_repo={repo} init=/etc/fleet-report \
         apkovl={ovl}/{{MAC}}.apkovl.tar.gz"
    ));
    Vm::boot(&image, Opts::named(name).net(Net::user().mac(mac)))
}

/// The server's tree: the Alpine repository at `/apks`, the overlays at `/ovl`.
fn fleet_tree(name: &str) -> std::path::PathBuf {
    let env = Env::get();
    let dir = env
        .assets
        .join(format!("netboot-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("ovl")).unwrap();
    std::os::unix::fs::symlink(env.alpine_repo(), dir.join("apks")).unwrap();
    dir
}

/// `mkimage --format netboot` into `dir/net`, served at `base`: the repository of alpine-base,
/// the kernel and the standard initramfs, one overlay per MAC from `--hosts` (each host's
/// `fleet_overlay`, signed for its MAC), and `boot.ipxe` with the serial console.
fn netboot_tree(dir: &std::path::Path, base: &str, hosts: &[(&str, &str)]) -> std::path::PathBuf {
    let env = Env::get();
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut lines = String::from("# MAC -> host\n");
    let mut cmd = std::process::Command::new(env.bin("mkimage"));
    for (mac, host) in hosts {
        lines.push_str(&format!("{mac} {host}\n"));
        let ovl = src.join(format!("{host}.apkovl.tar.gz"));
        std::fs::write(&ovl, fleet_overlay(host)).unwrap();
        cmd.arg("--apkovl").arg(&ovl);
    }
    std::fs::write(src.join("hosts"), lines).unwrap();
    let out = dir.join("net");
    let keys = env.keys();
    let st = cmd
        .args(["-q", "--format", "netboot", "-o"])
        .arg(&out)
        .arg("--repository")
        .arg(env.alpine_repo())
        .arg("--keys-dir")
        .arg(env.alpine_keys())
        .args(["--world", "alpine-base", "--kernel"])
        .arg(&env.kernel)
        .arg("--initramfs")
        .arg(env.initramfs(&InitramfsRecipe::standard()))
        .arg("--sign-key")
        .arg(&keys.index_key)
        .arg("--ovl-key")
        .arg(&keys.overlay_key)
        .arg("--hosts")
        .arg(src.join("hosts"))
        .args(["--netboot-url", base])
        .args([
            "--cmdline",
            &format!("{} panic=1", qemu_tests::machine::KERNEL_CONSOLE),
        ])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .status()
        .unwrap();
    assert!(st.success(), "mkimage --format netboot failed");
    out
}

/// Three machines, three MACs, one server serving the tree `mkimage --format netboot` wrote: the
/// first boots as a PXE client would, qemu's TFTP server handing its iPXE `boot.ipxe`, which
/// loads the kernel and initramfs over HTTP and boots with the tree's command line up to OpenRC;
/// the others boot the same kernel and initramfs through `-kernel` with `{MAC}` in `apkovl=`.
/// Each gets its own signed overlay (its host name and its own file).
#[test]
fn each_mac_gets_its_own_signed_overlay() {
    let tree = fleet_tree("fleet");
    let macs = [
        "52:54:00:12:34:41",
        "52:54:00:12:34:42",
        "52:54:00:12:34:43",
    ];
    let server = Server::start(&tree);
    let port = server.port;
    let base = format!("http://10.0.2.2:{port}/net");
    let net = netboot_tree(
        &tree,
        &base,
        &[(macs[0], "fw1"), (macs[1], "fw2"), (macs[2], "fw3")],
    );
    let runs: Vec<_> = macs
        .iter()
        .enumerate()
        .map(|(i, mac)| {
            let (mac, base, net) = (mac.to_string(), base.clone(), net.clone());
            std::thread::spawn(move || {
                let n = i + 1;
                let mut vm = if i == 0 {
                    // Firmware -> iPXE (the NIC's option ROM) -> TFTP boot.ipxe -> HTTP.
                    Vm::boot(
                        &Image::firmware(),
                        Opts::named("netboot-fleet-ipxe")
                            .net(Net::user().mac(&mac).tftp(&net, "boot.ipxe").boot(0)),
                    )
                } else {
                    boot_fleet_member_from(
                        &format!("netboot-fleet-{n}"),
                        &mac,
                        &InitramfsRecipe::standard(),
                        &format!("{base}/apks"),
                        &base,
                    )
                };
                if i == 0 {
                    // boot.ipxe's own line, on the serial console through SeaBIOS, then the
                    // command line with iPXE's variables expanded.
                    vm.expect(&format!(" from {base}"));
                    vm.expect(&format!(
                        "Command line: initrd=initramfs ip=dhcp BOOTIF=01-{} alpine_repo={base}/apks modloop=none apkovl={base}/{{MAC}}.apkovl.tar.gz ",
                        mac.replace(':', "-")
                    ));
                    vm.expect("Obtaining IP via DHCP (eth0)");
                }
                vm.expect(&format!(
                    "Downloading user settings from {base}/{mac}.apkovl.tar.gz"
                ));
                vm.expect("apkovl signature verified (key overlay-test.pub)");
                vm.expect("(25/25) Installing alpine-base (3.19.1-r0)");
                if i == 0 {
                    vm.expect("OpenRC 0.52.1 is starting up");
                    vm.expect(&format!("FLEET-OPENRC host=fw{n} id=id-fw{n}"));
                } else {
                    vm.expect(&format!("FLEET host=fw{n} id=id-fw{n}"));
                }
                vm.wait_poweroff();
            })
        })
        .collect();
    // The same script with its server down: iPXE says why, then the firmware moves on to its
    // next boot device (none here).
    let down = Server::start(&tree);
    let down_base = format!("http://10.0.2.2:{}/net", down.port);
    drop(down);
    let down_dir = tree.join("down");
    std::fs::create_dir_all(&down_dir).unwrap();
    let script = std::fs::read_to_string(net.join("boot.ipxe")).unwrap();
    std::fs::write(
        down_dir.join("boot.ipxe"),
        script.replace(
            &format!("set base {base}"),
            &format!("set base {down_base}"),
        ),
    )
    .unwrap();
    let mut vm = Vm::boot(
        &Image::firmware(),
        Opts::named("netboot-ipxe-server-down").net(
            Net::user()
                .mac("52:54:00:12:34:44")
                .tftp(&down_dir, "boot.ipxe")
                .boot(0),
        ),
    );
    // (qemu's user network answers a closed port with a reset.)
    vm.expect(&format!("{down_base}/boot/vmlinuz... Connection "));
    vm.expect("Could not boot image: Connection ");
    vm.expect("No bootable device");
    drop(vm);
    for r in runs {
        r.join().expect("a fleet member failed (its log names it)");
    }
    let log = server.log.lock().unwrap().clone();
    for path in ["/net/boot/vmlinuz", "/net/boot/initramfs"] {
        assert_eq!(
            log.iter().filter(|p| *p == path).count(),
            1,
            "{path} is fetched by iPXE only: {log:?}"
        );
    }
    for mac in macs {
        assert!(
            log.contains(&format!("/net/{mac}.apkovl.tar.gz.sig")),
            "{log:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&tree);
}

/// What must not boot: an overlay copied from another MAC's name (its signed statement names
/// the other host), an overlay whose signature is for other bytes, and an overlay server that is
/// down (the one-line error names the URL). Each stops in the overlay phase and `panic=1`
/// reboots; nothing is installed.
#[test]
fn swapped_forged_and_unreachable_overlays_are_refused() {
    let env = Env::get();
    let tree = fleet_tree("refusals");
    let ovl_a = fleet_overlay("fw1");
    let sig_a = env.sign_overlay(&ovl_a, "52:54:00:12:34:51.apkovl.tar.gz");
    // fw1's overlay and signature, published under another machine's MAC.
    publish(&tree.join("ovl"), "52:54:00:12:34:52", &ovl_a, &sig_a);
    // A signature for other bytes.
    let ovl_c = fleet_overlay("fw3");
    let sig_other = env.sign_overlay(&fleet_overlay("fw9"), "52:54:00:12:34:53.apkovl.tar.gz");
    publish(&tree.join("ovl"), "52:54:00:12:34:53", &ovl_c, &sig_other);
    let server = Server::start(&tree);
    let repo = format!("http://10.0.2.2:{}/apks", server.port);
    let port = server.port;
    // A server that was stopped: its port refuses connections.
    let down = Server::start(&tree);
    let down_port = down.port;
    drop(down);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let cases: Vec<(&str, &str, u16, Vec<String>)> = vec![
        (
            "netboot-swapped",
            "52:54:00:12:34:52",
            port,
            vec![
                // The message names the URL, not the initramfs's copy.
                format!("ERROR: overlay: http://10.0.2.2:{port}/ovl/52:54:00:12:34:52.apkovl.tar.gz: signature check failed: "),
                "signed for host 52:54:00:12:34:51".into(),
            ],
        ),
        (
            "netboot-forged",
            "52:54:00:12:34:53",
            port,
            vec![
                format!("ERROR: overlay: http://10.0.2.2:{port}/ovl/52:54:00:12:34:53.apkovl.tar.gz: signature check failed: "),
                "overlay does not match its signature".into(),
            ],
        ),
        (
            "netboot-server-down",
            "52:54:00:12:34:54",
            down_port,
            vec![format!(
                "ERROR: overlay: http://10.0.2.2:{down_port}/ovl/52:54:00:12:34:54.apkovl.tar.gz: "
            )],
        ),
    ];
    let runs: Vec<_> = cases
        .into_iter()
        .map(|(name, mac, p, markers)| {
            let repo = repo.clone();
            std::thread::spawn(move || {
                let mut vm = boot_fleet_member(name, mac, &repo, p);
                for m in &markers {
                    vm.expect(m);
                }
                vm.expect("rebooting in 1 s (panic=1)");
                vm.wait_poweroff();
                vm.refute("Installing alpine-base");
                vm.refute("FLEET host=");
            })
        })
        .collect();
    for r in runs {
        r.join().expect("a refusal case failed (its log names it)");
    }
    let _ = std::fs::remove_dir_all(&tree);
}

/// `modloop=http://...`: the modloop `mkimage` signed for the running kernel, served with its
/// `.sig`, is downloaded, verified with the initramfs's keys and mounted from its sealed copy;
/// `modprobe wireguard` loads from it. A flipped byte in the served copy is refused.
#[test]
fn a_modloop_from_a_url_is_verified_and_mounted() {
    let env = Env::get();
    let mut extra = vec![
        "--modloop-kver".to_string(),
        env.kver.clone(),
        "--modloop-comp".into(),
        "zstd".into(),
    ];
    for e in qemu_tests::assets::TEST_MODLOOP_EXCLUDES {
        extra.push("--modloop-exclude".into());
        extra.push(e.to_string());
    }
    let medium = env.medium_with(
        &qemu_tests::MediumRecipe {
            uki: qemu_tests::UkiRecipe::None,
            format: qemu_tests::MediumFormat::Vfat,
            world: vec!["alpine-base".into()],
            project_repo: false,
            world_extra: vec![],
            label: "ALPINE".into(),
            cmdline: String::new(),
            initramfs: env.initramfs(&InitramfsRecipe::standard()),
            overlay: None,
        },
        &extra,
    );
    let name = format!(
        "modloop-{}",
        env.kver.rsplit('-').next().unwrap_or(&env.kver)
    );
    let tree = fleet_tree("modloop");
    std::fs::create_dir_all(tree.join("boot")).unwrap();
    for f in [name.clone(), format!("{name}.sig")] {
        let bytes = qemu_tests::vfat::read(&medium, &format!("boot/{f}"));
        std::fs::write(tree.join("boot").join(&f), &bytes).unwrap();
        // The same modloop with one byte flipped (its signature unchanged).
        let mut bad = bytes;
        if f == name {
            let mid = bad.len() / 2;
            bad[mid] ^= 0xff;
        }
        std::fs::write(tree.join("ovl").join(&f), &bad).unwrap();
    }
    // The same modloop, validly signed by the medium key for another kernel.
    std::fs::create_dir_all(tree.join("other")).unwrap();
    std::fs::copy(
        tree.join("boot").join(&name),
        tree.join("other").join(&name),
    )
    .unwrap();
    let sig = std::fs::read_to_string(tree.join("boot").join(format!("{name}.sig"))).unwrap();
    let mut other = bootspec::modloop::Signed::parse(&sig).unwrap();
    other.statement.kernel = "6.1.0-0-other".into();
    let key = apk::trust::PrivateKey::load(&env.keys().index_key).unwrap();
    let alg = apk::trust::Alg::parse_entry(&format!(".SIGN.{}.x", other.statement.algorithm))
        .expect("a known algorithm")
        .0;
    other.signature = key.sign(alg, &other.statement.message()).unwrap();
    std::fs::write(
        tree.join("other").join(format!("{name}.sig")),
        other.render(),
    )
    .unwrap();
    let server = Server::start(&tree);
    let repo = format!("http://10.0.2.2:{}/apks", server.port);
    let script = "if modprobe wireguard; then echo MODPROBE-OK; else echo MODPROBE-FAIL; fi\n\
        echo \"MODLOOP-MOUNTS:$(grep -c ' /.modloop squashfs ' /proc/mounts)\"\n\
        sync; poweroff -f";
    let initramfs = initramfs_with_overlay(Overlay::new().world(&["alpine-base"]).scenario(script));
    let runs: Vec<_> = [
        ("boot", "netboot-modloop"),
        ("ovl", "netboot-modloop-tampered"),
        ("other", "netboot-modloop-other-kernel"),
    ]
    .into_iter()
    .map(|(dir, run)| {
        let (env_kernel, initramfs, repo, name) = (
            env.kernel.clone(),
            initramfs.clone(),
            repo.clone(),
            name.clone(),
        );
        let port = server.port;
        std::thread::spawn(move || {
            let image = Image::kernel(&env_kernel, &initramfs).cmdline(&format!(
                "panic=1 alpine_repo={repo} apkovl=/qemutest.apkovl.tar.gz \
                     modloop=http://10.0.2.2:{port}/{dir}/{name}"
            ));
            let mut vm = Vm::boot(&image, Opts::named(run).net(Net::user()));
            vm.expect(&format!(
                "Downloading the modloop from http://10.0.2.2:{port}/{dir}/{name}"
            ));
            if dir == "boot" {
                vm.expect("verified by medium-test.pub");
                vm.expect("MODPROBE-OK");
                vm.expect("MODLOOP-MOUNTS:1");
            } else if dir == "other" {
                vm.expect(&format!(
                    "http://10.0.2.2:{port}/other/{name}: signed for kernel 6.1.0-0-other, \
                     the running kernel is "
                ));
                vm.expect("MODLOOP-MOUNTS:0");
            } else {
                vm.expect("MODLOOP-MOUNTS:0");
                vm.refute("verified by medium-test.pub");
            }
            vm.wait_poweroff();
        })
    })
    .collect();
    for r in runs {
        r.join().expect("a modloop run failed (its log names it)");
    }
    let _ = std::fs::remove_dir_all(&tree);
}

/// HTTPS boot servers signed by a private authority: with `mkinitfs --ca` the overlay and the
/// 25 packages come over HTTPS (the one server, checked against the initramfs's bundle) and the
/// host boots its own overlay; without it (the build host's public bundle only) the first
/// download is refused with a one-line error naming the URL and the certificate problem, and
/// nothing is installed.
#[test]
fn https_servers_are_checked_against_the_initramfs_authorities() {
    let env = Env::get();
    let ca = TestCa::new("netboot test CA");
    let tree = fleet_tree("https");
    let ca_file = tree.join("test-ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    for (mac, host) in [("52:54:00:12:34:61", "tls1"), ("52:54:00:12:34:62", "tls2")] {
        let ovl = fleet_overlay(host);
        let sig = env.sign_overlay(&ovl, &format!("{mac}.apkovl.tar.gz"));
        publish(&tree.join("ovl"), mac, &ovl, &sig);
    }
    let server = Server::start_tls(&tree, &ca);
    let base = format!("https://10.0.2.2:{}", server.port);
    let trusted = InitramfsRecipe {
        ca: Some(ca_file),
        ..InitramfsRecipe::standard()
    };
    let (repo, ovl) = (format!("{base}/apks"), format!("{base}/ovl"));
    let refused = std::thread::spawn(move || {
        let mut vm = boot_fleet_member_from(
            "netboot-https-unknown-ca",
            "52:54:00:12:34:62",
            &InitramfsRecipe::standard(),
            &repo,
            &ovl,
        );
        vm.expect(&format!(
            "ERROR: overlay: {ovl}/52:54:00:12:34:62.apkovl.tar.gz: TLS: "
        ));
        vm.expect("rebooting in 1 s (panic=1)");
        vm.wait_poweroff();
        vm.refute("Installing alpine-base");
    });
    let mut vm = boot_fleet_member_from(
        "netboot-https",
        "52:54:00:12:34:61",
        &trusted,
        &format!("{base}/apks"),
        &format!("{base}/ovl"),
    );
    vm.expect("apkovl signature verified (key overlay-test.pub)");
    vm.expect(&format!("boot repository {base}/apks"));
    vm.expect("(25/25) Installing alpine-base (3.19.1-r0)");
    vm.expect("FLEET host=tls1 id=id-tls1");
    vm.wait_poweroff();
    refused
        .join()
        .expect("the unknown-CA boot failed (its log names it)");
    let log = server.log.lock().unwrap().clone();
    assert!(
        log.contains(&"/apks/x86_64/alpine-base-3.19.1-r0.apk".to_string()),
        "{log:?}"
    );
    let _ = std::fs::remove_dir_all(&tree);
}
