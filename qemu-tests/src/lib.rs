//! The project's one qemu harness: end-to-end boots of the real thing (Debian's kernel, real
//! Alpine packages, the project's binaries) under `qemu-system-x86_64 -accel tcg`, read from the
//! serial console. Every crate's qemu tests use it (a dev-dependency).
//!
//! A test reads like a scenario (no timing assertions; every wait is bounded):
//! ```no_run
//! use qemu_tests::{Disk, Env, Image, InitramfsRecipe, Opts, Vm};
//! let env = Env::get();
//! let initramfs = env.initramfs(&InitramfsRecipe::standard());
//! # let medium = std::path::PathBuf::new();
//! let image = Image::kernel(&env.kernel, &initramfs)
//!     .cmdline("modloop=none panic=1")
//!     .disk(Disk::virtio(env.copy_medium(&medium, "tampered")));
//! let mut vm = Vm::boot(&image, Opts::named("tampered"));
//! vm.expect("signature check failed");
//! vm.expect("rebooting in 1 s (panic=1)");
//! vm.wait_poweroff();
//! ```
//! - [`Image`] is what boots: the kernel as `-kernel` loads it, or the firmware finding a boot
//!   loader ([`Image::firmware`]); disks as virtio, USB sticks (`qemu-xhci` + `usb-storage`) or
//!   CD-ROMs, each optionally a firmware boot device.
//! - [`Opts`] is how it runs: memory, CPUs, chipset ([`Machine`]), firmware ([`Firmware`]:
//!   SeaBIOS, OVMF with its own pflash variable store, Secure Boot with `q35,smm=on`), user-mode
//!   networks ([`Net`]: qemu's TFTP, a loopback HTTP server at 10.0.2.2, cards hotplugged on the
//!   monitor), the monitor, the timeout.
//! - [`Vm`] is a run: [`Vm::expect`] (bounded), [`Vm::send`], [`Vm::power_cut`],
//!   [`Vm::wait_poweroff`], [`Vm::monitor`]; a failure prints the console's tail, the init's
//!   boot timeline and when each marker appeared, and saves the whole log.
//! - [`Env`] builds boot assets with the project's binaries (`$PROJECT_OUT/bin`, set by the
//!   Makefile; default `<workspace>/out`): keys, initramfs images (`mkinitfs`), media
//!   (`mkimage`), cached under a hash of their recipe in `$PROJECT_OUT/qemu-assets/`, so an edited
//!   recipe rebuilds and the rest is reused. [`Kernel::host`] alone needs no binaries (the
//!   mkinitfs tests boot their own initramfs with it).

#![deny(missing_docs)]

pub mod assets;
pub mod bench;
pub mod http;
pub mod image;
pub mod kernel;
pub mod machine;
pub mod monitor;
pub mod overlay;
pub mod profile;
pub mod vfat;
pub mod vm;

pub use assets::{Env, InitramfsRecipe, MediumFormat, MediumRecipe, UkiRecipe};
pub use image::{Boot, Disk, Image, Interface};
pub use kernel::Kernel;
pub use machine::{Firmware, Machine, Net, Nic, Opts, BOOT_TIMEOUT};
pub use overlay::Overlay;
pub use vm::Vm;
