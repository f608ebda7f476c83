//! The newc ("070701") cpio format of the initramfs, read and written in one place for the
//! workspace: [`write_tree`] writes the archive `mkinitfs` builds, [`Reader`] reads one archive
//! as a stream (headers, then each entry's data on demand), and [`scan`] walks a whole initramfs
//! file the way the kernel unpacks it: archives one after the other, each plain or compressed,
//! with zero padding between them (`mkimage` looks inside the initramfs it puts on a medium this
//! way).
//!
//! The layout follows the kernel's `init/initramfs.c` and `Documentation/driver-api/early-userspace`:
//! a 110-byte ASCII header (magic and 13 fields of 8 hex digits), the NUL-terminated name padded
//! so that header + name is a multiple of 4, then the data padded to a multiple of 4. The archive
//! ends with an entry named `TRAILER!!!`. The crate `cpio` is not used: it loses short writes and
//! renumbers inodes, and it has no streaming reader.

mod read;
mod scan;
mod write;

pub use read::{parse, Header, ParsedEntry, ReadError, Reader};
pub use scan::{scan, MAX_XZ_UNPACKED};
pub use write::write_tree;

/// The magic of a newc header (no checksum; `070702` "crc" archives are not written or read).
pub const MAGIC: &str = "070701";

/// The name of the entry that ends an archive.
pub const TRAILER: &str = "TRAILER!!!";

/// Length of a newc header before the name.
pub const HEADER_LEN: usize = 110;

/// The kernel's limit for a name (`PATH_MAX`), NUL included.
pub const MAX_NAME: usize = 4096;

/// File type bits of `mode`.
pub const S_IFMT: u32 = 0o170000;
/// A directory.
pub const S_IFDIR: u32 = 0o040000;
/// A regular file.
pub const S_IFREG: u32 = 0o100000;
/// A symbolic link (the data is the target).
pub const S_IFLNK: u32 = 0o120000;
/// A character device (`rdev` holds major and minor).
pub const S_IFCHR: u32 = 0o020000;

/// Rounds `n` up to the next multiple of 4 (newc alignment).
fn pad4(n: u64) -> u64 {
    n.div_ceil(4) * 4
}
