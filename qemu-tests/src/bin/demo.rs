//! `make demo`: boot the example appliance (`appliances/jumphost`, built by
//! `scripts/build-appliance.sh`) in qemu, show its console until it is up, log in on the serial
//! console, show what it runs, print the boot timeline and where the image is, and power it off.

use qemu_tests::{Disk, Env, Image, Net, Opts, Vm};
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--timeline") {
        return timeline(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("--help")
        || args.first().map(String::as_str) == Some("-h")
    {
        println!("usage: demo [NAME]                         boot out/appliance/NAME (default jumphost), log in, power off\n       demo --timeline IMG INITRAMFS [CMDLINE]  boot once and print the init's boot timeline (make bench)");
        return;
    }
    let name = args.first().cloned().unwrap_or_else(|| "jumphost".into());
    let env = Env::get();
    let dir = env.out.join("appliance");
    let img = dir.join(format!("{name}.img"));
    let initramfs = dir.join(format!("{name}.initramfs"));
    let kernel = dir.join(format!("{name}.vmlinuz"));
    for f in [&img, &initramfs, &kernel] {
        if !f.is_file() {
            eprintln!(
                "demo: {} is missing: run scripts/build-appliance.sh {name} (make demo does)",
                f.display()
            );
            std::process::exit(1);
        }
    }
    // Boot a copy: the image stays as built, ready for a USB stick.
    let disk: PathBuf = env.copy_medium(&img, "demo");
    let profile = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../appliances")
        .join(&name);
    let cmdline = std::fs::read_to_string(profile.join("cmdline")).unwrap_or_default();
    let cmdline = cmdline.trim().replace("quiet", "");
    println!(
        "== booting {} in qemu (TCG): kernel {}, medium {} as a virtio disk",
        name,
        kernel.display(),
        img.display()
    );
    let image = Image::kernel(&kernel, &initramfs)
        .cmdline(&cmdline)
        .disk(Disk::virtio(&disk));
    let mut vm = Vm::boot(
        &image,
        Opts {
            echo: true,
            ..Opts::named("demo")
        }
        .net(Net::user()),
    );
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
    println!(
        "   the kernel and initramfs are in boot/ of the stick; see README.md for boot loaders."
    );
}

/// Boot a medium once (no network), print the init's timeline when the system reached its login
/// prompt, then cut the power.
fn timeline(args: &[String]) {
    let (Some(img), Some(initramfs)) = (args.first(), args.get(1)) else {
        eprintln!("usage: demo --timeline IMG INITRAMFS [CMDLINE]");
        std::process::exit(2);
    };
    let env = Env::get();
    let disk = env.copy_medium(std::path::Path::new(img), "bench");
    let cmdline = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "modloop=none".into());
    let image = Image::kernel(&env.kernel, initramfs)
        .cmdline(&cmdline)
        .disk(Disk::virtio(&disk));
    let mut vm = Vm::boot(&image, Opts::named("bench"));
    vm.expect("switch_root");
    vm.expect("login:");
    vm.power_cut();
    let _ = std::fs::remove_file(&disk);
    match vm.timeline() {
        Some(t) => println!("{t}"),
        None => {
            eprintln!("demo: no boot timeline on the console");
            std::process::exit(1);
        }
    }
}
