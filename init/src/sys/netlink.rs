//! The kernel uevent socket (`NETLINK_KOBJECT_UEVENT`, multicast group 1).
//!
//! Opened before coldplug so no hotplug event is lost in between. The receive buffer is forced to
//! `uevent_buf_size` (default 4 MiB, as nlplug-findfs after its overflow bugs); an overflow shows
//! up as `ENOBUFS`, which the caller answers by re-running coldplug instead of failing
//! (docs/boot.md, "Media"). Only messages from the kernel (sender port id 0) are returned.
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    bind, recvfrom, setsockopt, socket, sockopt, AddressFamily, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};

/// Why the socket could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// `socket`/`bind` failed.
    #[error("uevent socket: {0}")]
    Open(Errno),
    /// The receive buffer overflowed: events were lost.
    #[error("uevent buffer overflow (current size {0} bytes)")]
    Overflow(usize),
    /// `recvfrom`/`poll` failed.
    #[error("uevent socket: {0}")]
    Recv(Errno),
}

/// An open uevent socket.
#[derive(Debug)]
pub struct UeventSocket {
    fd: OwnedFd,
    buf_size: usize,
}

impl UeventSocket {
    /// Opens and binds the socket with a forced receive buffer of `buf_size` bytes.
    pub fn open(buf_size: usize) -> Result<Self, NetlinkError> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkKObjectUEvent,
        )
        .map_err(NetlinkError::Open)?;
        // RCVBUFFORCE ignores rmem_max (we are root); fall back to the capped RCVBUF otherwise.
        if setsockopt(&fd, sockopt::RcvBufForce, &buf_size).is_err() {
            let _ = setsockopt(&fd, sockopt::RcvBuf, &buf_size);
        }
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 1)).map_err(NetlinkError::Open)?;
        Ok(Self { fd, buf_size })
    }

    /// Waits up to `timeout` for the socket to become readable.
    pub fn wait(&self, timeout: Duration) -> Result<bool, NetlinkError> {
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(n) => Ok(n > 0),
            Err(Errno::EINTR) => Ok(false),
            Err(errno) => Err(NetlinkError::Recv(errno)),
        }
    }

    /// Receives one message into `buf` without blocking: `Ok(None)` when nothing is queued.
    /// Messages not sent by the kernel (udev's `libudev` multicasts, other processes) are
    /// returned as empty slices so that the caller simply skips them.
    pub fn recv<'a>(&self, buf: &'a mut [u8]) -> Result<Option<&'a [u8]>, NetlinkError> {
        match recvfrom::<NetlinkAddr>(self.fd.as_raw_fd(), buf) {
            Ok((len, from)) => {
                let from_kernel = from.map(|a| a.pid() == 0).unwrap_or(false);
                Ok(Some(if from_kernel {
                    &buf[..len.min(buf.len())]
                } else {
                    &buf[..0]
                }))
            }
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => Ok(None),
            Err(Errno::ENOBUFS) => Err(NetlinkError::Overflow(self.buf_size)),
            Err(errno) => Err(NetlinkError::Recv(errno)),
        }
    }
}
