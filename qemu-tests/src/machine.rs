//! How a VM runs: the emulated machine, its firmware, network, monitor and limits ([`Opts`]),
//! and the qemu command line for an [`Image`] under those options ([`qemu_args`], pure, so the
//! shapes of firmware boots are unit-tested without starting qemu).
//!
//! TCG only: KVM hangs on the project's machines. The serial console is qemu's stdio, where the
//! firmware writes too (SeaBIOS, OVMF); there is no display. A VM never gets a network card it was not given (`-nic none`), and a user-mode network
//! reaches the host only as 10.0.2.2, where tests run their loopback servers.
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::image::{Boot, Image, Interface};

/// How long one VM may run under TCG before the test gives up (a bound against hangs, never a
/// timing assertion).
/// Generous: the project's machines are shared, and a loaded host slows TCG several times over.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(600);

/// What every `-kernel` boot's command line starts with: the serial console, and no IO-APIC
/// timer check (under TCG on a loaded host the kernel's check that the timer interrupt arrives
/// can time out and panic "IO-APIC + timer doesn't work", a false alarm on a virtual machine).
pub const KERNEL_CONSOLE: &str = "console=ttyS0 no_timer_check";

/// The emulated chipset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Machine {
    /// i440FX + PIIX (`pc`): qemu's default.
    #[default]
    Pc,
    /// Q35 + ICH9 (`q35`); `smm` is required by Secure Boot firmware.
    Q35 {
        /// System management mode (`smm=on`).
        smm: bool,
    },
}

/// The firmware.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS, qemu's default BIOS.
    #[default]
    SeaBios,
    /// OVMF (UEFI) from two pflash units: the code read-only, a private copy of the variable
    /// store writable (the firmware writes boot entries there).
    Ovmf {
        /// `OVMF_CODE*.fd`.
        code: PathBuf,
        /// Template of the variable store (`OVMF_VARS*.fd`), copied per VM.
        vars: PathBuf,
        /// Secure Boot: the code is the `secboot` build, which needs `q35,smm=on` and secure
        /// pflash; the variable store decides which keys are enrolled.
        secure_boot: bool,
    },
}

/// Debian's `ovmf` package.
const OVMF_DIR: &str = "/usr/share/OVMF";

impl Firmware {
    /// OVMF without Secure Boot (Debian's 4 MiB build).
    pub fn ovmf() -> Self {
        Firmware::Ovmf {
            code: Path::new(OVMF_DIR).join("OVMF_CODE_4M.fd"),
            vars: Path::new(OVMF_DIR).join("OVMF_VARS_4M.fd"),
            secure_boot: false,
        }
    }

    /// OVMF in Secure Boot mode with Debian's test key enrolled in PK/KEK/db
    /// (`/usr/share/ovmf/PkKek-1-snakeoil.{key,pem}` signs what it accepts).
    pub fn ovmf_snakeoil() -> Self {
        Firmware::Ovmf {
            code: Path::new(OVMF_DIR).join("OVMF_CODE_4M.snakeoil.fd"),
            vars: Path::new(OVMF_DIR).join("OVMF_VARS_4M.snakeoil.fd"),
            secure_boot: true,
        }
    }

    /// OVMF in Secure Boot mode with a variable store of your own (e.g. your key enrolled).
    pub fn ovmf_secure_boot(vars: impl AsRef<Path>) -> Self {
        Firmware::Ovmf {
            code: Path::new(OVMF_DIR).join("OVMF_CODE_4M.secboot.fd"),
            vars: vars.as_ref().to_path_buf(),
            secure_boot: true,
        }
    }
}

/// A user-mode (slirp) network and, usually, a card on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Net {
    /// The netdev id (`net0`); `device_add ...,netdev=ID` on the monitor plugs a card later.
    pub id: String,
    /// qemu's built-in TFTP server root.
    pub tftp: Option<PathBuf>,
    /// The DHCP boot file name (PXE/iPXE), served from [`Net::tftp`] or a URL.
    pub bootfile: Option<String>,
    /// The card; `None` leaves the network for a hotplugged card.
    pub nic: Option<Nic>,
}

/// A network card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nic {
    /// qemu device model (`virtio-net-pci`, `e1000`).
    pub model: String,
    /// MAC address (`52:54:00:12:34:56`); qemu picks one when `None`.
    pub mac: Option<String>,
    /// Firmware boot order (PXE through the card's option ROM).
    pub boot_index: Option<u32>,
}

impl Net {
    /// A user-mode network `net0` with a virtio card: the host is 10.0.2.2.
    pub fn user() -> Self {
        Net {
            id: "net0".into(),
            tftp: None,
            bootfile: None,
            nic: Some(Nic {
                model: "virtio-net-pci".into(),
                mac: None,
                boot_index: None,
            }),
        }
    }

    /// Another netdev id (several networks on one VM).
    pub fn id(mut self, id: &str) -> Self {
        self.id = id.to_string();
        self
    }

    /// Serve `dir` over TFTP and hand out `bootfile` in DHCP (PXE, iPXE chain-loading).
    pub fn tftp(mut self, dir: impl AsRef<Path>, bootfile: &str) -> Self {
        self.tftp = Some(dir.as_ref().to_path_buf());
        self.bootfile = Some(bootfile.to_string());
        self
    }

    /// The card's device model.
    pub fn model(mut self, model: &str) -> Self {
        if let Some(n) = &mut self.nic {
            n.model = model.to_string();
        }
        self
    }

    /// The card's MAC address.
    pub fn mac(mut self, mac: &str) -> Self {
        if let Some(n) = &mut self.nic {
            n.mac = Some(mac.to_string());
        }
        self
    }

    /// Network boot from this card at position `index`.
    pub fn boot(mut self, index: u32) -> Self {
        if let Some(n) = &mut self.nic {
            n.boot_index = Some(index);
        }
        self
    }

    /// No card now: plug one later with `device_add MODEL,netdev=ID` on the monitor.
    pub fn unplugged(mut self) -> Self {
        self.nic = None;
        self
    }
}

/// How a VM runs.
#[derive(Clone, Debug)]
pub struct Opts {
    /// Name of the saved serial log (`<log dir>/<name>.serial.log`); a failure message shows it.
    pub name: String,
    /// RAM in MiB.
    pub memory_mib: u32,
    /// Virtual CPUs.
    pub smp: u32,
    /// Chipset.
    pub machine: Machine,
    /// Firmware.
    pub firmware: Firmware,
    /// Networks (none by default: no card at all).
    pub nets: Vec<Net>,
    /// Open qemu's human monitor on a private socket ([`crate::Vm::monitor`]).
    pub monitor: bool,
    /// Start with the CPUs stopped (`-S`; `cont` on the monitor starts them).
    pub paused: bool,
    /// Bound on the whole run ([`BOOT_TIMEOUT`]).
    pub timeout: Duration,
    /// Copy the console to stdout as it arrives (the demo).
    pub echo: bool,
    /// Where logs are saved (default: `$PROJECT_OUT/qemu-logs`, else `target/qemu-logs`).
    pub log_dir: Option<PathBuf>,
    /// Further qemu arguments, appended as they are.
    pub extra: Vec<String>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            name: "vm".into(),
            memory_mib: 1024,
            smp: 1,
            machine: Machine::Pc,
            firmware: Firmware::SeaBios,
            nets: Vec::new(),
            monitor: false,
            paused: false,
            timeout: BOOT_TIMEOUT,
            echo: false,
            log_dir: None,
            extra: Vec::new(),
        }
    }
}

impl Opts {
    /// Default options with a log name.
    pub fn named(name: &str) -> Self {
        Opts {
            name: name.to_string(),
            ..Opts::default()
        }
    }

    /// Add a network.
    pub fn net(mut self, net: Net) -> Self {
        self.nets.push(net);
        self
    }

    /// Use this firmware (Secure Boot firmware also selects `q35,smm=on`).
    pub fn firmware(mut self, firmware: Firmware) -> Self {
        if matches!(
            firmware,
            Firmware::Ovmf {
                secure_boot: true,
                ..
            }
        ) {
            self.machine = Machine::Q35 { smm: true };
        }
        self.firmware = firmware;
        self
    }
}

/// Files of one run (the private variable store, the monitor socket).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunFiles {
    /// The VM's copy of the OVMF variable store.
    pub ovmf_vars: PathBuf,
    /// The monitor's unix socket.
    pub monitor: PathBuf,
}

impl RunFiles {
    /// The files of a run in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        RunFiles {
            ovmf_vars: dir.join("OVMF_VARS.fd"),
            monitor: dir.join("monitor.sock"),
        }
    }
}

/// The qemu arguments (after the program name) for `image` under `opts`.
pub fn qemu_args(image: &Image, opts: &Opts, run: &RunFiles) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |args: &[&str]| a.extend(args.iter().map(|s| s.to_string()));
    push(&["-accel", "tcg"]);
    match opts.machine {
        Machine::Pc => push(&["-machine", "pc"]),
        Machine::Q35 { smm } => push(&["-machine", if smm { "q35,smm=on" } else { "q35" }]),
    }
    push(&[
        "-m",
        &opts.memory_mib.to_string(),
        "-smp",
        &opts.smp.to_string(),
        // No window, and the firmware's own text (SeaBIOS, OVMF, boot loaders) on the serial
        // console too: qemu tells SeaBIOS to use it only under -nographic.
        "-nographic",
        "-serial",
        "stdio",
        "-no-reboot",
    ]);
    if opts.monitor {
        push(&[
            "-monitor",
            &format!("unix:{},server=on,wait=off", run.monitor.display()),
        ]);
    } else {
        push(&["-monitor", "none"]);
    }
    if opts.paused {
        push(&["-S"]);
    }
    if let Firmware::Ovmf {
        code, secure_boot, ..
    } = &opts.firmware
    {
        if *secure_boot {
            push(&["-global", "driver=cfi.pflash01,property=secure,value=on"]);
        }
        push(&[
            "-drive",
            &format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={}",
                code.display()
            ),
            "-drive",
            &format!(
                "if=pflash,format=raw,unit=1,file={}",
                run.ovmf_vars.display()
            ),
        ]);
    }
    if let Boot::Kernel {
        kernel,
        initramfs,
        cmdline,
    } = &image.boot
    {
        let append = if cmdline.is_empty() {
            KERNEL_CONSOLE.to_string()
        } else {
            format!("{KERNEL_CONSOLE} {cmdline}")
        };
        push(&[
            "-kernel",
            &kernel.display().to_string(),
            "-initrd",
            &initramfs.display().to_string(),
            "-append",
            &append,
        ]);
    }
    if image.disks.iter().any(|d| d.interface == Interface::Usb) {
        push(&["-device", "qemu-xhci,id=xhci"]);
    }
    for (i, d) in image.disks.iter().enumerate() {
        let id = format!("disk{i}");
        let mut drive = format!("id={id},if=none,format=raw,file={}", d.path.display());
        if d.interface == Interface::Cdrom {
            drive.push_str(",media=cdrom");
        }
        if d.read_only {
            drive.push_str(",readonly=on");
        }
        let mut device = match d.interface {
            Interface::Virtio => format!("virtio-blk-pci,drive={id}"),
            Interface::Usb => format!("usb-storage,bus=xhci.0,drive={id}"),
            Interface::Cdrom => format!("ide-cd,drive={id}"),
        };
        if let Some(b) = d.boot_index {
            device.push_str(&format!(",bootindex={b}"));
        }
        push(&["-drive", &drive, "-device", &device]);
    }
    if opts.nets.is_empty() {
        push(&["-nic", "none"]);
    }
    for n in &opts.nets {
        let mut netdev = format!("user,id={}", n.id);
        if let Some(t) = &n.tftp {
            netdev.push_str(&format!(",tftp={}", t.display()));
        }
        if let Some(b) = &n.bootfile {
            netdev.push_str(&format!(",bootfile={b}"));
        }
        push(&["-netdev", &netdev]);
        if let Some(nic) = &n.nic {
            let mut device = format!("{},netdev={}", nic.model, n.id);
            if let Some(m) = &nic.mac {
                device.push_str(&format!(",mac={m}"));
            }
            if let Some(b) = nic.boot_index {
                device.push_str(&format!(",bootindex={b}"));
            }
            push(&["-device", &device]);
        }
    }
    a.extend(opts.extra.iter().cloned());
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Disk;

    fn run() -> RunFiles {
        RunFiles::in_dir(Path::new("/run/vm"))
    }

    fn joined(image: &Image, opts: &Opts) -> String {
        qemu_args(image, opts, &run()).join(" ")
    }

    #[test]
    fn kernel_boot_on_virtio_without_network() {
        let image = Image::kernel("/boot/vmlinuz", "/tmp/initramfs")
            .cmdline("modloop=none")
            .cmdline("panic=1")
            .disk(Disk::virtio("/tmp/m.img"));
        let a = joined(&image, &Opts::default());
        assert!(a.starts_with("-accel tcg -machine pc -m 1024 -smp 1 -nographic -serial stdio -no-reboot -monitor none"), "{a}");
        assert!(
            a.contains("-kernel /boot/vmlinuz -initrd /tmp/initramfs -append console=ttyS0 no_timer_check modloop=none panic=1"),
            "{a}"
        );
        assert!(a.contains("-drive id=disk0,if=none,format=raw,file=/tmp/m.img -device virtio-blk-pci,drive=disk0"), "{a}");
        assert!(a.ends_with("-nic none"), "{a}");
        assert!(!a.contains("pflash") && !a.contains("xhci"), "{a}");
    }

    #[test]
    fn firmware_boots_from_usb_and_cdrom() {
        let image = Image::firmware()
            .disk(Disk::usb("/tmp/stick.img").boot(0))
            .disk(Disk::cdrom("/tmp/a.iso").boot(1));
        let opts = Opts::default().firmware(Firmware::ovmf());
        let a = joined(&image, &opts);
        assert!(!a.contains("-kernel"), "{a}");
        assert!(a.contains("-machine pc "), "{a}");
        assert!(a.contains("-drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd -drive if=pflash,format=raw,unit=1,file=/run/vm/OVMF_VARS.fd"), "{a}");
        assert!(a.contains("-device qemu-xhci,id=xhci -drive id=disk0,if=none,format=raw,file=/tmp/stick.img -device usb-storage,bus=xhci.0,drive=disk0,bootindex=0"), "{a}");
        assert!(a.contains("-drive id=disk1,if=none,format=raw,file=/tmp/a.iso,media=cdrom,readonly=on -device ide-cd,drive=disk1,bootindex=1"), "{a}");
    }

    #[test]
    fn secure_boot_selects_q35_smm_and_secure_pflash() {
        let opts = Opts::default().firmware(Firmware::ovmf_snakeoil());
        let a = joined(&Image::firmware(), &opts);
        assert!(a.contains("-machine q35,smm=on"), "{a}");
        assert!(
            a.contains("-global driver=cfi.pflash01,property=secure,value=on"),
            "{a}"
        );
        assert!(a.contains("OVMF_CODE_4M.snakeoil.fd"), "{a}");
    }

    #[test]
    fn networks_tftp_mac_hotplug_and_monitor() {
        let opts = Opts {
            monitor: true,
            paused: true,
            ..Opts::default()
        }
        .net(
            Net::user()
                .tftp("/srv/tftp", "boot.ipxe")
                .mac("52:54:00:00:00:01")
                .boot(0),
        )
        .net(Net::user().id("hot").unplugged());
        let a = joined(&Image::firmware(), &opts);
        assert!(
            a.contains("-monitor unix:/run/vm/monitor.sock,server=on,wait=off"),
            "{a}"
        );
        assert!(a.contains(" -S"), "{a}");
        assert!(a.contains("-netdev user,id=net0,tftp=/srv/tftp,bootfile=boot.ipxe -device virtio-net-pci,netdev=net0,mac=52:54:00:00:00:01,bootindex=0"), "{a}");
        assert!(a.ends_with("-netdev user,id=hot"), "{a}");
        assert!(!a.contains("-nic none"), "{a}");
    }
}
