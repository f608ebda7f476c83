//! `make demo`: boot the example appliance (`appliances/jumphost`, built by `make appliance`, that
//! is `mkimage --profile appliances/jumphost`) in qemu from the firmware, as a PC boots the USB stick: SeaBIOS
//! finds syslinux on the image attached as a USB disk, the demo picks the menu's `serial` entry
//! (the console on the first serial port, as on a headless box), then shows the console until
//! the box is up, logs in on the serial console, shows what it runs, prints the boot timeline and
//! where the image is, and powers it off.

use qemu_tests::{Disk, Env, Firmware, Image, Net, Opts, Vm};
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--timeline") {
        return timeline(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("--help")
        || args.first().map(String::as_str) == Some("-h")
    {
        println!("usage: demo [NAME]                          boot out/appliance/NAME.img (default jumphost), log in, power off\n       demo --timeline IMG [INITRAMFS [CMDLINE]]  boot once and print the init's boot timeline (make bench);\n                                                  INITRAMFS defaults to the image's boot/initramfs");
        return;
    }
    let name = args.first().cloned().unwrap_or_else(|| "jumphost".into());
    let env = Env::get();
    let dir = env.out.join("appliance");
    let img = dir.join(format!("{name}.img"));
    if !img.is_file() {
        eprintln!(
            "demo: {} is missing: run make appliance (make demo does)",
            img.display()
        );
        std::process::exit(1);
    }
    // Boot a copy: the image stays as built, ready for a USB stick.
    let disk: PathBuf = env.copy_medium(&img, "demo");
    println!(
        "== booting {} in qemu (TCG) from the firmware: SeaBIOS, medium {} as a USB stick",
        name,
        img.display()
    );
    let image = Image::firmware().disk(Disk::usb(&disk).boot(0));
    let mut vm = Vm::boot(
        &image,
        Opts {
            echo: true,
            ..Opts::named("demo")
        }
        .firmware(Firmware::SeaBios)
        .net(Net::user()),
    );
    // syslinux's menu: the `serial` entry puts the kernel's console on ttyS0 (where qemu's
    // console is), as one would pick it on a box without a screen.
    vm.expect("boot:");
    std::thread::sleep(std::time::Duration::from_millis(200));
    vm.send("serial");
    vm.expect("login:");
    std::thread::sleep(std::time::Duration::from_millis(500));
    vm.send("root");
    vm.expect(":~#");
    vm.send("uname -a; apk info | wc -l; rc-status default; lbu status; echo DEMO-SHOWN");
    vm.expect("DEMO-SHOWN\n");
    vm.expect(":~#");
    vm.send("poweroff");
    vm.wait_poweroff();
    vm.set_echo(false);
    let _ = std::fs::remove_file(&disk);
    println!("\n\n== the appliance came up and powered off");
    if let Some(tl) = vm.timeline() {
        println!("{tl}");
    }
    println!("\n== image: {}", img.display());
    println!("   write it to a USB stick (all data on the stick is lost):");
    println!("   dd if={} of=/dev/sdX bs=4M conv=fsync", img.display());
    println!("   it boots on BIOS (syslinux) and UEFI (EFI/BOOT/BOOTX64.EFI) PCs; see README.md.");
}

/// Boot a medium once (no network), print the init's timeline when the system reached its login
/// prompt, then cut the power.
fn timeline(args: &[String]) {
    let Some(img) = args.first() else {
        eprintln!("usage: demo --timeline IMG [INITRAMFS [CMDLINE]]");
        std::process::exit(2);
    };
    let env = Env::get();
    let disk = env.copy_medium(std::path::Path::new(img), "bench");
    // The medium's own initramfs unless one is given.
    let from_image = env.out.join("bench-initramfs");
    let initramfs = match args.get(1) {
        Some(f) => PathBuf::from(f),
        None => {
            std::fs::write(&from_image, qemu_tests::vfat::read(&disk, "boot/initramfs")).unwrap();
            from_image.clone()
        }
    };
    let cmdline = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "modloop=none".into());
    let image = Image::kernel(&env.kernel, &initramfs)
        .cmdline(&cmdline)
        .disk(Disk::virtio(&disk));
    let mut vm = Vm::boot(&image, Opts::named("bench"));
    vm.expect("switch_root");
    vm.expect("login:");
    vm.power_cut();
    let _ = std::fs::remove_file(&disk);
    let _ = std::fs::remove_file(&from_image);
    match vm.timeline() {
        Some(t) => println!("{t}"),
        None => {
            eprintln!("demo: no boot timeline on the console");
            std::process::exit(1);
        }
    }
}
