//! What a VM boots: the kernel the way `-kernel` loads it, or whatever the firmware finds, plus
//! the disks, CD-ROMs and USB sticks attached to it.
//!
//! ```no_run
//! use qemu_tests::{Disk, Image};
//! # let (kernel, initramfs, medium, iso) = ("k", "i", "m.img", "a.iso");
//! // The init under test, from a USB-stick image on virtio:
//! let image = Image::kernel(kernel, initramfs)
//!     .cmdline("modloop=none panic=1")
//!     .disk(Disk::virtio(medium));
//! // The same stick found by the firmware (SeaBIOS or OVMF), as a USB disk:
//! let image = Image::firmware().disk(Disk::usb(medium).boot(0));
//! // A hybrid ISO on a CD-ROM drive:
//! let image = Image::firmware().disk(Disk::cdrom(iso).boot(0));
//! ```
use std::path::{Path, PathBuf};

/// How the kernel gets loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Boot {
    /// qemu loads the kernel and initramfs itself (`-kernel`, `-initrd`, `-append`); the serial
    /// console ([`crate::machine::KERNEL_CONSOLE`]) comes first on the command line, the image's
    /// words after it.
    Kernel {
        /// The kernel image.
        kernel: PathBuf,
        /// The initramfs.
        initramfs: PathBuf,
        /// Words after the console.
        cmdline: String,
    },
    /// The firmware (see [`crate::Firmware`]) boots from the disks, CD-ROMs or network cards
    /// that carry a boot index: the boot loader on the medium loads the kernel, as on real
    /// hardware.
    Firmware,
}

/// How a disk image is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interface {
    /// virtio-blk (`/dev/vda`, ...): the quick stand-in for a stick.
    Virtio,
    /// A USB mass-storage device on an xHCI controller (`/dev/sda`, ...): what a real stick is.
    Usb,
    /// An IDE/AHCI CD-ROM drive (`/dev/sr0`), read-only.
    Cdrom,
}

/// A disk image attached to the VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disk {
    /// The raw image (writes go to it unless [`Disk::read_only`]).
    pub path: PathBuf,
    /// How it is attached.
    pub interface: Interface,
    /// Refuse writes.
    pub read_only: bool,
    /// Firmware boot order (`bootindex`, 0 first); `None`: not a boot device.
    pub boot_index: Option<u32>,
}

impl Disk {
    fn new(path: impl AsRef<Path>, interface: Interface) -> Self {
        Disk {
            path: path.as_ref().to_path_buf(),
            interface,
            read_only: interface == Interface::Cdrom,
            boot_index: None,
        }
    }

    /// A raw image on virtio-blk.
    pub fn virtio(path: impl AsRef<Path>) -> Self {
        Self::new(path, Interface::Virtio)
    }

    /// A raw image as a USB stick (`-device qemu-xhci -device usb-storage`).
    pub fn usb(path: impl AsRef<Path>) -> Self {
        Self::new(path, Interface::Usb)
    }

    /// An ISO image in a CD-ROM drive.
    pub fn cdrom(path: impl AsRef<Path>) -> Self {
        Self::new(path, Interface::Cdrom)
    }

    /// Attach read-only.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Make it a firmware boot device at position `index` (0 boots first).
    pub fn boot(mut self, index: u32) -> Self {
        self.boot_index = Some(index);
        self
    }
}

/// What a VM boots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// The boot path.
    pub boot: Boot,
    /// Attached disks, in order (virtio disks get `vda`, `vdb`, ... in this order).
    pub disks: Vec<Disk>,
}

impl Image {
    /// `-kernel KERNEL -initrd INITRAMFS -append "console=ttyS0 no_timer_check ..."`.
    pub fn kernel(kernel: impl AsRef<Path>, initramfs: impl AsRef<Path>) -> Self {
        Image {
            boot: Boot::Kernel {
                kernel: kernel.as_ref().to_path_buf(),
                initramfs: initramfs.as_ref().to_path_buf(),
                cmdline: String::new(),
            },
            disks: Vec::new(),
        }
    }

    /// No kernel from qemu: the firmware boots from a device with a boot index.
    pub fn firmware() -> Self {
        Image {
            boot: Boot::Firmware,
            disks: Vec::new(),
        }
    }

    /// Append words to the kernel command line (after the console). Only for
    /// [`Image::kernel`]: a firmware boot takes its command line from the medium.
    pub fn cmdline(mut self, words: &str) -> Self {
        match &mut self.boot {
            Boot::Kernel { cmdline, .. } => {
                if !cmdline.is_empty() && !words.is_empty() {
                    cmdline.push(' ');
                }
                cmdline.push_str(words);
            }
            Boot::Firmware => panic!("a firmware boot takes its command line from the medium"),
        }
        self
    }

    /// Attach a disk.
    pub fn disk(mut self, disk: Disk) -> Self {
        self.disks.push(disk);
        self
    }
}
