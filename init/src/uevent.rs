//! Kernel uevent messages: parsing and the filters nlplug-findfs applies.
//!
//! A kernel uevent is `ACTION@DEVPATH\0KEY=VALUE\0...`. Messages shorter than 32 or of 16384
//! bytes and more are dropped, as are udev's re-broadcasts (`libudev` header) and anything not sent
//! by the kernel (filtered in [`crate::sys::netlink`]). Only what the init acts on is kept:
//! `MODALIAS` (load drivers), `SUBSYSTEM=block` with `DEVNAME` (probe a boot medium candidate).
use std::collections::BTreeMap;

/// Smallest message nlplug-findfs accepts.
pub const MIN_LEN: usize = 32;
/// Messages of this size and more are dropped.
pub const MAX_LEN: usize = 16384;

/// One parsed uevent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uevent {
    /// `add`, `remove`, `change`, `bind`, ...
    pub action: String,
    /// `/devices/...`
    pub devpath: String,
    /// Every `KEY=VALUE` pair.
    pub env: BTreeMap<String, String>,
}

impl Uevent {
    /// Parses a raw message; `None` for anything that is not a well-formed kernel uevent.
    pub fn parse(raw: &[u8]) -> Option<Self> {
        if raw.len() < MIN_LEN || raw.len() >= MAX_LEN || raw.starts_with(b"libudev") {
            return None;
        }
        let mut parts = raw.split(|&b| b == 0).filter(|p| !p.is_empty());
        let header = std::str::from_utf8(parts.next()?).ok()?;
        let (action, devpath) = header.split_once('@')?;
        if action.is_empty() || !devpath.starts_with('/') {
            return None;
        }
        let mut env = BTreeMap::new();
        for p in parts {
            let Ok(kv) = std::str::from_utf8(p) else {
                continue;
            };
            if let Some((k, v)) = kv.split_once('=') {
                env.insert(k.to_string(), v.to_string());
            }
        }
        // The ACTION key must agree with the header, or the message is malformed.
        if env.get("ACTION").is_some_and(|a| a != action) {
            return None;
        }
        Some(Self {
            action: action.to_string(),
            devpath: devpath.to_string(),
            env,
        })
    }

    /// The `MODALIAS` of an `add` event, if any.
    pub fn modalias(&self) -> Option<&str> {
        (self.action == "add")
            .then(|| self.env.get("MODALIAS").map(String::as_str))
            .flatten()
    }

    /// The kernel name of a block device that was added or changed (`sda1`).
    pub fn block_device(&self) -> Option<&str> {
        if self.env.get("SUBSYSTEM").map(String::as_str) != Some("block") {
            return None;
        }
        if self.action != "add" && self.action != "change" {
            return None;
        }
        let name = self
            .env
            .get("DEVNAME")
            .map(String::as_str)
            .unwrap_or_else(|| self.devpath.rsplit('/').next().unwrap_or(""));
        let name = name.strip_prefix("/dev/").unwrap_or(name);
        (!name.is_empty() && !name.contains("..")).then_some(name)
    }

    /// The driver bound by a `bind` event (`usb-storage` adds a settle delay).
    pub fn bound_driver(&self) -> Option<&str> {
        (self.action == "bind")
            .then(|| self.env.get("DRIVER").map(String::as_str))
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(parts: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        for p in parts {
            v.extend_from_slice(p.as_bytes());
            v.push(0);
        }
        v
    }

    #[test]
    fn block_add_event() {
        let raw = msg(&[
            "add@/devices/pci0000:00/0000:00:04.0/virtio1/block/vda/vda1",
            "ACTION=add",
            "DEVPATH=/devices/pci0000:00/0000:00:04.0/virtio1/block/vda/vda1",
            "SUBSYSTEM=block",
            "MAJOR=254",
            "MINOR=1",
            "DEVNAME=vda1",
            "DEVTYPE=partition",
            "SEQNUM=1234",
        ]);
        let ev = Uevent::parse(&raw).unwrap();
        assert_eq!(ev.action, "add");
        assert_eq!(ev.block_device(), Some("vda1"));
        assert_eq!(ev.modalias(), None);
    }

    #[test]
    fn modalias_only_on_add() {
        let raw = msg(&[
            "add@/devices/pci0000:00/0000:00:04.0/virtio1",
            "ACTION=add",
            "SUBSYSTEM=virtio",
            "MODALIAS=virtio:d00000002v00001AF4",
        ]);
        assert_eq!(
            Uevent::parse(&raw).unwrap().modalias(),
            Some("virtio:d00000002v00001AF4")
        );
        let raw = msg(&[
            "remove@/devices/pci0000:00/0000:00:04.0/virtio1",
            "ACTION=remove",
            "SUBSYSTEM=virtio",
            "MODALIAS=virtio:d00000002v00001AF4",
        ]);
        assert_eq!(Uevent::parse(&raw).unwrap().modalias(), None);
    }

    #[test]
    fn change_counts_for_block_remove_does_not() {
        let raw = msg(&[
            "change@/devices/platform/sr0/block/sr0",
            "ACTION=change",
            "SUBSYSTEM=block",
            "DEVNAME=sr0",
        ]);
        assert_eq!(Uevent::parse(&raw).unwrap().block_device(), Some("sr0"));
        let raw = msg(&[
            "remove@/devices/platform/sr0/block/sr0",
            "ACTION=remove",
            "SUBSYSTEM=block",
            "DEVNAME=sr0",
        ]);
        assert_eq!(Uevent::parse(&raw).unwrap().block_device(), None);
    }

    #[test]
    fn devname_falls_back_to_devpath_and_strips_dev() {
        let raw = msg(&[
            "add@/devices/virtual/block/loop0",
            "ACTION=add",
            "SUBSYSTEM=block",
        ]);
        assert_eq!(Uevent::parse(&raw).unwrap().block_device(), Some("loop0"));
        let raw = msg(&[
            "add@/devices/virtual/block/x",
            "ACTION=add",
            "SUBSYSTEM=block",
            "DEVNAME=/dev/md0",
        ]);
        assert_eq!(Uevent::parse(&raw).unwrap().block_device(), Some("md0"));
        let raw = msg(&[
            "add@/devices/virtual/block/x",
            "ACTION=add",
            "SUBSYSTEM=block",
            "DEVNAME=../../etc",
        ]);
        assert_eq!(Uevent::parse(&raw).unwrap().block_device(), None);
    }

    #[test]
    fn bind_driver() {
        let raw = msg(&[
            "bind@/devices/pci0000:00/usb1/1-1/1-1:1.0",
            "ACTION=bind",
            "DRIVER=usb-storage",
            "SUBSYSTEM=usb",
        ]);
        assert_eq!(
            Uevent::parse(&raw).unwrap().bound_driver(),
            Some("usb-storage")
        );
    }

    #[test]
    fn rejects_short_long_libudev_and_malformed() {
        assert_eq!(Uevent::parse(b"add@/x\0"), None);
        let mut long = msg(&["add@/devices/x", "ACTION=add"]);
        long.resize(MAX_LEN, b'a');
        assert_eq!(Uevent::parse(&long), None);
        let udev = msg(&[
            "libudev\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
            "ACTION=add",
        ]);
        assert_eq!(Uevent::parse(&udev), None);
        assert_eq!(
            Uevent::parse(&msg(&["no-at-sign-here-at-all-really-long", "ACTION=add"])),
            None
        );
        assert_eq!(
            Uevent::parse(&msg(&[
                "add@relative/devpath/is/not/valid/here",
                "ACTION=add"
            ])),
            None
        );
        assert_eq!(
            Uevent::parse(&msg(&["add@/devices/virtual/block/loop0", "ACTION=remove"])),
            None
        );
        assert_eq!(Uevent::parse(&[0xffu8; 64]), None);
    }
}
