//! Loop devices: a read-only block device over an open file, for the modloop (docs/boot.md,
//! "Modloop").
//!
//! The device is configured from the file descriptor the caller already verified the bytes
//! through (`LOOP_CONFIGURE`, Linux 5.8; `LOOP_SET_FD` + `LOOP_SET_STATUS64` on older kernels), so
//! no path is looked up again between verification and mount. It is read-only and
//! auto-clearing: it disappears when its last user (the squashfs mount) goes, as `mount -o loop`
//! sets it up. There is no crate for this that builds without bindgen (`loopdev`), and the
//! kernel ABI is three ioctls and two plain structs (`include/uapi/linux/loop.h`).
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use super::SysError;

const LOOP_CONTROL: &str = "/dev/loop-control";
/// Block major of loop devices.
const LOOP_MAJOR: u64 = 7;
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_NAME_SIZE: usize = 64;
/// Devices tried when another program takes the free one first.
const ATTEMPTS: usize = 8;

/// `struct loop_info64`.
#[repr(C)]
#[derive(Clone, Copy)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// `struct loop_config`.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

nix::ioctl_none_bad!(
    /// `LOOP_CTL_GET_FREE`: the number of a free loop device (created if needed).
    loop_ctl_get_free,
    0x4C82
);
nix::ioctl_write_ptr_bad!(
    /// `LOOP_CONFIGURE`: backing file, flags and size limit in one call (Linux 5.8).
    loop_configure,
    0x4C0A,
    LoopConfig
);
nix::ioctl_write_int_bad!(
    /// `LOOP_SET_FD`: the backing file (older kernels).
    loop_set_fd,
    0x4C00
);
nix::ioctl_write_ptr_bad!(
    /// `LOOP_SET_STATUS64`: flags and size limit (older kernels).
    loop_set_status64,
    0x4C04,
    LoopInfo64
);
nix::ioctl_none_bad!(
    /// `LOOP_CLR_FD`: detach the backing file.
    loop_clr_fd,
    0x4C01
);

/// A configured loop device, held open. Auto-clearing means the kernel detaches the device when
/// its last opener goes: this handle must live until the filesystem on it is mounted (the mount
/// then holds it), as `mount -o loop` does; dropped without a mount, the device goes away.
#[derive(Debug)]
pub struct LoopDevice {
    /// The device (`/dev/loop0`).
    pub path: PathBuf,
    _open: File,
}

/// Attaches `file` (its first `size` bytes) to a free loop device, read-only and auto-clearing.
/// Returns the open device: keep it until the mount is done (see [`LoopDevice`]). `name` is
/// recorded as the backing file's name (what `losetup` shows).
pub fn attach_read_only(file: &File, size: u64, name: &Path) -> Result<LoopDevice, SysError> {
    let control = Path::new(LOOP_CONTROL);
    let ctl = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_CLOEXEC)
        .open(control)
        .map_err(|source| SysError::Io {
            path: control.to_path_buf(),
            source,
        })?;
    let mut info = LoopInfo64 {
        lo_device: 0,
        lo_inode: 0,
        lo_rdevice: 0,
        lo_offset: 0,
        lo_sizelimit: size,
        lo_number: 0,
        lo_encrypt_type: 0,
        lo_encrypt_key_size: 0,
        lo_flags: LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR,
        lo_file_name: [0; LO_NAME_SIZE],
        lo_crypt_name: [0; LO_NAME_SIZE],
        lo_encrypt_key: [0; 32],
        lo_init: [0; 2],
    };
    let bytes = name.as_os_str().as_encoded_bytes();
    let n = bytes.len().min(LO_NAME_SIZE - 1);
    info.lo_file_name[..n].copy_from_slice(&bytes[..n]);
    let mut last = Errno::EBUSY;
    for _ in 0..ATTEMPTS {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument; `ctl` is an open loop-control fd we own.
        let number =
            unsafe { loop_ctl_get_free(ctl.as_raw_fd()) }.map_err(|errno| SysError::Errno {
                path: control.to_path_buf(),
                errno,
            })?;
        let dev = PathBuf::from(format!("/dev/loop{number}"));
        if std::fs::symlink_metadata(&dev).is_err() {
            // /dev is a tmpfs when devtmpfs was unavailable: make the node ourselves.
            mknod(
                &dev,
                SFlag::S_IFBLK,
                Mode::from_bits_truncate(0o600),
                makedev(LOOP_MAJOR, number as u64),
            )
            .map_err(|errno| SysError::Errno {
                path: dev.clone(),
                errno,
            })?;
        }
        let loop_file = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_CLOEXEC)
            .open(&dev)
            .map_err(|source| SysError::Io {
                path: dev.clone(),
                source,
            })?;
        match configure(&loop_file, file, &info) {
            Ok(()) => {
                return Ok(LoopDevice {
                    path: dev,
                    _open: loop_file,
                })
            }
            // Someone else took this device between GET_FREE and here: ask again.
            Err(Errno::EBUSY) => last = Errno::EBUSY,
            Err(errno) => return Err(SysError::Errno { path: dev, errno }),
        }
    }
    Err(SysError::Errno {
        path: control.to_path_buf(),
        errno: last,
    })
}

fn configure(loop_file: &File, backing: &File, info: &LoopInfo64) -> Result<(), Errno> {
    let config = LoopConfig {
        fd: backing.as_raw_fd() as u32,
        block_size: 0,
        info: *info,
        reserved: [0; 8],
    };
    // SAFETY: `config` is a fully initialised `struct loop_config` that outlives the call, and
    // both fds are open files we own for its duration; the kernel only reads the struct.
    match unsafe { loop_configure(loop_file.as_raw_fd(), &config) } {
        Ok(_) => return Ok(()),
        // Kernels before 5.8 do not know LOOP_CONFIGURE.
        Err(Errno::EINVAL | Errno::ENOTTY) => {}
        Err(e) => return Err(e),
    }
    // SAFETY: LOOP_SET_FD takes the backing fd as an integer; both fds are open and ours.
    unsafe { loop_set_fd(loop_file.as_raw_fd(), backing.as_raw_fd()) }?;
    // SAFETY: `info` is a fully initialised `struct loop_info64` borrowed for the call; the kernel
    // only reads it.
    if let Err(e) = unsafe { loop_set_status64(loop_file.as_raw_fd(), info) } {
        // SAFETY: LOOP_CLR_FD takes no argument; undoes the LOOP_SET_FD above on our own fd.
        let _ = unsafe { loop_clr_fd(loop_file.as_raw_fd()) };
        return Err(e);
    }
    Ok(())
}
