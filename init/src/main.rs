//! The `init` binary: PID 1 of the initramfs. All logic is in the library.

const HELP: &str = "\
usage: init   (as PID 1 of the initramfs; configured by the kernel command line)

The diskless initramfs init: mounts /proc /sys /dev /run, loads modules (modules=, coldplug,
hotplug), finds the boot media (alpine_dev=, LABEL=, UUID=), mounts a tmpfs root, verifies,
decrypts and applies the apkovl (apkovl=; the initramfs's /etc/boot-policy and overlay keys
decide what it must be, apkovl_require=signed|encrypted and apkovl_verify=required can only
tighten that), installs pkgs=, the overlay's world and alpine-base from the boot repositories
with the embedded apk core, sets up the new root, prints the boot timeline (kept in /var/log/boot-timeline.txt) and
switch_roots to /sbin/init (init=, init_args=). On failure: one clear line, the timeline, a
rescue shell when /bin/sh exists, else panic=N (reboot after N s; absent or 0: halt).
Network (netboot): ip=dhcp, ip=off or ip=CLIENT:SERVER:GW:NETMASK:HOSTNAME:DEVICE:AUTOCONF:DNS0:DNS1
(static); BOOTIF=01-aa-bb-cc-dd-ee-ff picks the card; alpine_repo=http(s)://... installs from a
remote repository (signed index, as on a medium) and brings the network up as ip=dhcp;
apkovl=http(s)://.../{MAC}.apkovl.tar.gz ({MAC}, {UUID} substituted) downloads the overlay and
its .sig, checked exactly as a medium's.
Other parameters: pkgs= ssh_key= hostname= blacklist= usbdelay= rootflags= keep_apk_new
s|single quiet debug_init console= panic=. See docs/boot.md.
It refuses to run as anything but PID 1: at switch_root it deletes the initramfs contents.";

fn main() -> ! {
    if std::process::id() != 1 && std::env::args().skip(1).any(|a| a == "-h" || a == "--help") {
        println!("{HELP}");
        std::process::exit(0);
    }
    init::run()
}
