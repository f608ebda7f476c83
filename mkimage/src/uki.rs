//! The unified kernel image (`--uki`): one PE file that UEFI firmware starts as
//! `EFI/BOOT/BOOTX64.EFI`, holding systemd's EFI stub (Debian's `systemd-boot-efi`,
//! `linuxx64.efi.stub`) and, as PE sections, `.osrel` (the release id), `.cmdline` (the command
//! line), `.linux` (the kernel) and `.initrd` (the sealed initramfs, [`crate::seal`]). With
//! `--sb-key KEY --sb-cert CERT` it is signed for Secure Boot (`sbsign`, Authenticode over the
//! whole file): the firmware then checks kernel, initramfs (with its keys and policy) and command
//! line with one signature, and the stub ignores any command line a boot manager passes.
//!
//! The sections are added by `objcopy` (binutils) at explicit addresses: systemd 252's stub does
//! not place them itself and wants them above its own image without overlapping. `.osrel` and
//! `.cmdline` go in the 64 KiB slots after the stub (which ends below [`OSREL_VMA`]: checked on
//! the stub with goblin), the kernel at 32 MiB and the initramfs at the next MiB boundary after
//! it. No well-kept crate writes PE sections into an existing image (goblin and object read PE;
//! object writes COFF objects, not images), hence objcopy; no crate signs Authenticode either,
//! hence sbsign, which is also verified against the certificate with `sbverify` before the
//! image goes on the medium.

use std::fs;
use std::path::{Path, PathBuf};

use crate::bootloader::host::{HostTool, Scratch};
use crate::error::{Error, IoResultExt};

/// systemd's EFI stub for x86_64.
pub const STUB: HostTool = HostTool {
    name: "/usr/lib/systemd/boot/efi/linuxx64.efi.stub",
    purpose: "--uki",
    debian: "systemd-boot-efi",
    alpine: "systemd-efistub",
};

const OBJCOPY: HostTool = HostTool {
    name: "objcopy",
    purpose: "--uki",
    debian: "binutils",
    alpine: "binutils",
};

const SBSIGN: HostTool = HostTool {
    name: "sbsign",
    purpose: "--sb-key",
    debian: "sbsigntool",
    alpine: "sbsigntool",
};

const SBVERIFY: HostTool = HostTool {
    name: "sbverify",
    purpose: "--sb-key",
    debian: "sbsigntool",
    alpine: "sbsigntool",
};

/// Where `.osrel` goes (relative virtual address); the stub must end below it.
pub const OSREL_VMA: u64 = 0x20000;
/// Where `.cmdline` goes.
pub const CMDLINE_VMA: u64 = 0x30000;
/// Where `.linux` goes.
pub const LINUX_VMA: u64 = 0x200_0000;
/// `.initrd` starts at the first multiple of this after the kernel.
const INITRD_ALIGN: u64 = 1 << 20;

/// The Secure Boot key pair that signs the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecureBootKey {
    /// The private key (PEM, as sbsign reads it). Never copied anywhere.
    pub key: PathBuf,
    /// Its certificate (PEM or DER, X.509).
    pub cert: PathBuf,
}

/// What goes into the image.
pub struct Parts<'a> {
    /// The kernel (`bzImage` with its EFI stub, as distributions ship it).
    pub kernel: &'a Path,
    /// The sealed initramfs.
    pub initrd: &'a [u8],
    /// The command line, exactly as signed.
    pub cmdline: &'a str,
    /// `os-release` text for `.osrel` (boot menus show its `PRETTY_NAME`).
    pub osrel: &'a str,
}

/// The section addresses for a kernel of `kernel_len` bytes: `(name, address)` in file order.
pub fn layout(kernel_len: u64) -> [(&'static str, u64); 4] {
    let initrd = (LINUX_VMA + kernel_len).next_multiple_of(INITRD_ALIGN);
    [
        (".osrel", OSREL_VMA),
        (".cmdline", CMDLINE_VMA),
        (".linux", LINUX_VMA),
        (".initrd", initrd),
    ]
}

/// Builds the image, signed when `sign` is given; `mtime` is its PE time stamp.
pub fn build(parts: &Parts, sign: Option<&SecureBootKey>, mtime: u64) -> Result<Vec<u8>, Error> {
    let stub = STUB.file()?;
    check_stub(&stub)?;
    if parts.osrel.len() as u64 > CMDLINE_VMA - OSREL_VMA {
        return Err(Error::setting("--uki", "the os-release text is too long"));
    }
    let kernel_len = fs::metadata(parts.kernel).at(parts.kernel)?.len();
    let scratch = Scratch::new("uki")?;
    let osrel = scratch.join("osrel");
    fs::write(&osrel, parts.osrel).at(&osrel)?;
    let cmdline = scratch.join("cmdline");
    fs::write(&cmdline, parts.cmdline).at(&cmdline)?;
    let initrd = scratch.join("initrd");
    fs::write(&initrd, parts.initrd).at(&initrd)?;
    let files = [osrel.as_path(), cmdline.as_path(), parts.kernel, &initrd];
    let unsigned = scratch.join("unsigned.efi");
    let mut cmd = OBJCOPY.command();
    for ((name, vma), file) in layout(kernel_len).into_iter().zip(files) {
        let mut add = std::ffi::OsString::from(format!("{name}="));
        add.push(file);
        cmd.arg("--add-section")
            .arg(add)
            .arg("--change-section-vma")
            .arg(format!("{name}={vma:#x}"));
    }
    OBJCOPY.run(cmd.arg(&stub).arg(&unsigned))?;
    let mut image = fs::read(&unsigned).at(&unsigned)?;
    stamp(&mut image, mtime).map_err(|reason| Error::Tool {
        tool: OBJCOPY.name,
        reason,
    })?;
    let Some(sb) = sign else {
        return Ok(image);
    };
    fs::write(&unsigned, &image).at(&unsigned)?;
    let cert = scratch.join("cert.pem");
    fs::write(&cert, cert_pem(&sb.cert)?).at(&cert)?;
    let signed = scratch.join("signed.efi");
    SBSIGN.run(
        SBSIGN
            .command()
            .arg("--key")
            .arg(&sb.key)
            .arg("--cert")
            .arg(&cert)
            .arg("--output")
            .arg(&signed)
            .arg(&unsigned),
    )?;
    SBVERIFY.run(SBVERIFY.command().arg("--cert").arg(&cert).arg(&signed))?;
    fs::read(&signed).at(&signed)
}

/// Sets the PE time stamp to `mtime` (objcopy writes the current time, which would make every
/// build differ) and recomputes the PE checksum over the result, so the same input gives the
/// same image (sbsign recomputes the checksum again after adding the signature).
fn stamp(image: &mut [u8], mtime: u64) -> Result<(), String> {
    let pe = image
        .get(0x3c..0x40)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .filter(|&pe| image.get(pe..pe + 4) == Some(b"PE\0\0"))
        .ok_or("wrote no PE header")?;
    // COFF header: TimeDateStamp at +8; the optional header follows the 24 bytes of signature
    // and COFF header, with CheckSum at its offset 64 (PE32 and PE32+ alike).
    let time = pe + 8;
    let checksum = pe + 24 + 64;
    if image.len() < checksum + 4 {
        return Err("wrote a truncated PE header".into());
    }
    let t = u32::try_from(mtime).unwrap_or(u32::MAX);
    image[time..time + 4].copy_from_slice(&t.to_le_bytes());
    image[checksum..checksum + 4].fill(0);
    let sum = pe_checksum(image);
    image[checksum..checksum + 4].copy_from_slice(&sum.to_le_bytes());
    Ok(())
}

/// The PE checksum (the checksum field itself zero): 16-bit one's-complement-style sum with the
/// carries folded in, plus the file length.
fn pe_checksum(image: &[u8]) -> u32 {
    let mut sum: u64 = 0;
    for chunk in image.chunks(2) {
        let word = u16::from_le_bytes([chunk[0], chunk.get(1).copied().unwrap_or(0)]);
        sum += u64::from(word);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32).wrapping_add(image.len() as u32)
}

/// Refuses a stub whose image reaches [`OSREL_VMA`] (another build than systemd 252's): the
/// sections would overlap it.
fn check_stub(stub: &Path) -> Result<(), Error> {
    let bytes = fs::read(stub).at(stub)?;
    let bad = |reason: String| Error::Tool {
        tool: STUB.name,
        reason,
    };
    let pe = goblin::pe::PE::parse(&bytes).map_err(|e| bad(format!("not a PE image ({e})")))?;
    let end = pe
        .sections
        .iter()
        .map(|s| u64::from(s.virtual_address) + u64::from(s.virtual_size.max(s.size_of_raw_data)))
        .max()
        .unwrap_or(0);
    if end > OSREL_VMA {
        return Err(bad(format!(
            "the stub's sections end at {end:#x}, past {OSREL_VMA:#x} where .osrel goes"
        )));
    }
    Ok(())
}

/// The certificate at `path` (PEM or DER) as DER, what firmware setup screens and
/// `efi-updatevar` enroll. A private key there is refused (the two options swapped): it would
/// land on the medium.
pub fn cert_der(path: &Path) -> Result<Vec<u8>, Error> {
    let bad = |reason: String| Error::Input {
        option: "--sb-cert",
        path: path.to_path_buf(),
        reason,
    };
    if let Some(secret) = mkinitfs::secret::find_in_file(path).at(path)? {
        return Err(Error::Secret {
            option: "--sb-cert",
            path: path.to_path_buf(),
            secret,
            reason: "the certificate goes on the medium, the private key never does",
        });
    }
    let bytes = fs::read(path).at(path)?;
    let der = if bytes.trim_ascii_start().starts_with(b"-----") {
        let block = pem::parse(&bytes).map_err(|e| bad(format!("not a PEM certificate ({e})")))?;
        if block.tag() != "CERTIFICATE" {
            return Err(bad(format!(
                "a PEM {} block, not a CERTIFICATE",
                block.tag()
            )));
        }
        block.into_contents()
    } else {
        bytes
    };
    // An X.509 certificate is a DER SEQUENCE whose first element is a SEQUENCE (the TBS part).
    if !matches!(der.as_slice(), [0x30, _, ..]) || !der_tbs_follows(&der) {
        return Err(bad("not an X.509 certificate (PEM or DER)".into()));
    }
    Ok(der)
}

/// The PEM text of the certificate at `path`, as sbsign reads it.
fn cert_pem(path: &Path) -> Result<String, Error> {
    let der = cert_der(path)?;
    Ok(pem::encode(&pem::Pem::new("CERTIFICATE", der)))
}

/// Whether the outer SEQUENCE's content starts with another SEQUENCE.
fn der_tbs_follows(der: &[u8]) -> bool {
    let len_octets = match der.get(1) {
        Some(&n) if n < 0x80 => 0,
        Some(&n) => usize::from(n & 0x7f),
        None => return false,
    };
    der.get(2 + len_octets) == Some(&0x30)
}

/// The `.osrel` text for a medium with release id `release` (`alpine-diskless-1.0 261202`).
pub fn os_release(release: &str) -> String {
    format!(
        "NAME=\"alpine-diskless\"\nID=alpine\nPRETTY_NAME=\"{release}\"\nVERSION_ID=\"{}\"\n",
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_follow_the_stub_and_do_not_overlap() {
        let l = layout(8_247_232);
        assert_eq!(l[0], (".osrel", 0x20000));
        assert_eq!(l[1], (".cmdline", 0x30000));
        assert_eq!(l[2], (".linux", 0x200_0000));
        // 32 MiB + 7.87 MiB of kernel: the next MiB boundary is 40 MiB.
        assert_eq!(l[3], (".initrd", 0x280_0000));
        // A kernel of exactly 1 MiB ends on a boundary.
        assert_eq!(layout(1 << 20)[3].1, 0x210_0000);
    }

    #[test]
    fn certificates_are_read_as_pem_or_der_and_private_keys_refused() {
        let t = tempfile::tempdir().unwrap();
        let params = rcgen::CertificateParams::new(vec!["test".into()]).unwrap();
        let kp = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&kp).unwrap();
        let pem_path = t.path().join("db.pem");
        fs::write(&pem_path, cert.pem()).unwrap();
        assert_eq!(cert_der(&pem_path).unwrap(), cert.der().to_vec());
        let der_path = t.path().join("db.der");
        fs::write(&der_path, cert.der()).unwrap();
        assert_eq!(cert_der(&der_path).unwrap(), cert.der().to_vec());
        assert!(cert_pem(&der_path)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----"));
        let key_path = t.path().join("db.key");
        fs::write(&key_path, kp.serialize_pem()).unwrap();
        let err = cert_der(&key_path).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "--sb-cert {}: a PEM private key (PRIVATE KEY): the certificate goes on the medium, the private key never does",
                key_path.display()
            )
        );
        let junk = t.path().join("junk");
        fs::write(&junk, b"hello").unwrap();
        assert!(cert_der(&junk)
            .unwrap_err()
            .to_string()
            .ends_with("not an X.509 certificate (PEM or DER)"));
    }

    #[test]
    fn the_time_stamp_is_the_build_time_and_the_checksum_follows() {
        // The stub's own checksum is the reference for the algorithm.
        let stub = fs::read(STUB.name).unwrap();
        let pe = u32::from_le_bytes(stub[0x3c..0x40].try_into().unwrap()) as usize;
        let at = pe + 24 + 64;
        let mut zeroed = stub.clone();
        zeroed[at..at + 4].fill(0);
        assert_eq!(
            pe_checksum(&zeroed).to_le_bytes(),
            stub[at..at + 4],
            "the stub's checksum"
        );
        let mut a = stub.clone();
        stamp(&mut a, 1_700_000_000).unwrap();
        assert_eq!(a[pe + 8..pe + 12], 1_700_000_000u32.to_le_bytes());
        let mut z = a.clone();
        z[at..at + 4].fill(0);
        assert_eq!(a[at..at + 4], pe_checksum(&z).to_le_bytes());
        assert!(stamp(&mut [0u8; 64], 0).is_err());
    }

    #[test]
    fn a_missing_stub_names_its_package() {
        let t = HostTool {
            name: "/nonexistent/linuxx64.efi.stub",
            ..STUB
        };
        assert!(t
            .file()
            .unwrap_err()
            .to_string()
            .contains("Debian: install the systemd-boot-efi package"));
    }
}
