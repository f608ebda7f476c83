//! The harness itself, on a machine that never runs (`-S`): the monitor answers, a card can be
//! hotplugged onto a prepared network, and a failed expectation reports the run's timeline.
//! Seconds each; no kernel, no binaries of the build needed.

use std::time::Duration;

use qemu_tests::{Image, Net, Opts, Vm};

fn paused(name: &str) -> Vm {
    let opts = Opts {
        monitor: true,
        paused: true,
        ..Opts::named(name)
    }
    .net(Net::user().id("hot").unplugged());
    Vm::boot(&Image::firmware(), opts)
}

#[test]
fn monitor_answers_and_hotplugs_a_card() {
    let mut vm = paused("harness-monitor");
    let status = vm.monitor("info status");
    assert!(status.contains("VM status: paused"), "{status:?}");
    let added = vm.monitor("device_add e1000,netdev=hot,id=nic1,mac=52:54:00:12:34:99");
    assert!(!added.contains("Error"), "{added:?}");
    let net = vm.monitor("info network");
    assert!(
        net.contains("nic1") && net.contains("52:54:00:12:34:99"),
        "{net:?}"
    );
    vm.monitor("quit");
    vm.wait_poweroff();
}

#[test]
#[should_panic(expected = "timed out waiting for [\"never printed\"]")]
fn a_missed_marker_fails_with_the_timelines() {
    let mut vm = paused("harness-timeout");
    vm.expect_within("never printed", Duration::from_secs(2));
}
