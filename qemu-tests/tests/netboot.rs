//! Netboot (issue 12): the init brings up the network (DHCP or a static `ip=`, the interface
//! chosen by `BOOTIF=`) and installs from a remote repository over HTTP, served by a loopback
//! server the guest reaches as 10.0.2.2 on qemu's user network. No medium at all: the kernel and
//! the initramfs come from `-kernel/-initrd`.

use qemu_tests::http::Server;
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
