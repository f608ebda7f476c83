//! The `.modinfo` section of a kernel module, read statically (no `modinfo` binary, so a foreign
//! or chroot base directory never consults the build host's kmod).
//!
//! Compressed modules (`.ko.gz`, `.ko.xz`, `.ko.zst`) are decompressed in memory (by the `kmod`
//! crate, bounded) for reading only; the image stores them as they are. We only need the `firmware=` entries, which name files
//! under `/lib/firmware` the driver may request at probe time.

use std::path::Path;

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::{header::Header, section_header::SectionHeader, Elf};

use crate::error::Error;

fn elf_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Elf {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The raw `.modinfo` section of an (uncompressed) module, or empty if it has none. Only the
/// header and section table are parsed: modules carry large symbol and relocation tables that a
/// full parse would walk for nothing.
pub fn modinfo_section<'a>(path: &Path, elf: &'a [u8]) -> Result<&'a [u8], Error> {
    let header =
        Elf::parse_header(elf).map_err(|e| elf_err(path, format!("not an ELF module: {e}")))?;
    let ctx = ctx_of(path, &header)?;
    let sections = section_headers(path, elf, &header, ctx)?;
    let strtab = sections
        .get(header.e_shstrndx as usize)
        .ok_or_else(|| elf_err(path, "section name table index out of range"))?;
    let names = section_bytes(path, elf, strtab)?;
    for sh in &sections {
        let start = sh.sh_name;
        let name = names
            .get(start..)
            .and_then(|n| n.split(|&b| b == 0).next())
            .unwrap_or(&[]);
        if name == b".modinfo" {
            return section_bytes(path, elf, sh);
        }
    }
    Ok(&[])
}

/// Word size and byte order of an ELF header.
fn ctx_of(path: &Path, header: &Header) -> Result<Ctx, Error> {
    let container =
        if header.e_ident[goblin::elf::header::EI_CLASS] == goblin::elf::header::ELFCLASS64 {
            Container::Big
        } else {
            Container::Little
        };
    let endian = match header.e_ident[goblin::elf::header::EI_DATA] {
        goblin::elf::header::ELFDATA2LSB => Endian::Little,
        goblin::elf::header::ELFDATA2MSB => Endian::Big,
        other => return Err(elf_err(path, format!("bad ELF byte order {other}"))),
    };
    Ok(Ctx::new(container, endian))
}

fn section_headers(
    path: &Path,
    elf: &[u8],
    header: &Header,
    ctx: Ctx,
) -> Result<Vec<SectionHeader>, Error> {
    let count = header.e_shnum as usize;
    let size = SectionHeader::size(ctx);
    let end = (header.e_shoff as usize).saturating_add(count.saturating_mul(size));
    if count == 0 || end > elf.len() {
        return Err(elf_err(path, "truncated or missing section table"));
    }
    SectionHeader::parse(elf, header.e_shoff as usize, count, ctx)
        .map_err(|e| elf_err(path, format!("bad section table: {e}")))
}

fn section_bytes<'a>(path: &Path, elf: &'a [u8], sh: &SectionHeader) -> Result<&'a [u8], Error> {
    let start = sh.sh_offset as usize;
    let end = start.checked_add(sh.sh_size as usize);
    end.and_then(|end| elf.get(start..end))
        .ok_or_else(|| elf_err(path, "section extends past the end of the file"))
}

/// `firmware=` values of the module file at `path`. Uncompressed modules are read in pieces
/// (header, section table, names, `.modinfo`): a few KiB instead of the whole file, which is
/// most of mkinitfs' I/O otherwise. Compressed modules are read whole and decompressed.
pub fn firmware_of_file(path: &Path) -> Result<Vec<String>, Error> {
    use std::os::unix::fs::FileExt;
    let io_err = |e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    if !path.to_string_lossy().ends_with(".ko") {
        let bytes = std::fs::read(path).map_err(io_err)?;
        return firmware(path, bytes);
    }
    let file = std::fs::File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    let read_at = |offset: u64, size: u64| -> Result<Vec<u8>, Error> {
        if offset.checked_add(size).is_none_or(|end| end > len) || size > kmod::MAX_MODULE {
            return Err(elf_err(path, "section extends past the end of the file"));
        }
        let mut buf = vec![0u8; size as usize];
        file.read_exact_at(&mut buf, offset).map_err(io_err)?;
        Ok(buf)
    };
    let head = read_at(0, len.min(64))?;
    let header =
        Elf::parse_header(&head).map_err(|e| elf_err(path, format!("not an ELF module: {e}")))?;
    let ctx = ctx_of(path, &header)?;
    let table_size = header.e_shnum as u64 * SectionHeader::size(ctx) as u64;
    // goblin treats a section table at offset 0 as "no sections": keep the table at offset 8 of
    // the buffer.
    let mut table = vec![0u8; 8];
    table.extend(read_at(header.e_shoff, table_size)?);
    let mut shifted = header;
    shifted.e_shoff = 8;
    let sections = section_headers(path, &table, &shifted, ctx)?;
    let strtab = sections
        .get(header.e_shstrndx as usize)
        .ok_or_else(|| elf_err(path, "section name table index out of range"))?;
    let names = read_at(strtab.sh_offset, strtab.sh_size)?;
    for sh in &sections {
        let name = names
            .get(sh.sh_name..)
            .and_then(|n| n.split(|&b| b == 0).next())
            .unwrap_or(&[]);
        if name == b".modinfo" {
            return Ok(firmware_entries(&read_at(sh.sh_offset, sh.sh_size)?));
        }
    }
    Ok(Vec::new())
}

fn firmware_entries(info: &[u8]) -> Vec<String> {
    info.split(|&b| b == 0)
        .filter_map(|entry| entry.strip_prefix(b"firmware="))
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// `firmware=` values of a module file (any supported compression), in file order.
pub fn firmware(path: &Path, on_disk: Vec<u8>) -> Result<Vec<String>, Error> {
    let compression = kmod::Compression::of(&path.to_string_lossy());
    let elf = kmod::decompress(&on_disk, compression).map_err(|e| elf_err(path, e.to_string()))?;
    Ok(firmware_entries(modinfo_section(path, &elf)?))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// A minimal ELF64 relocatable with a `.modinfo` section and a section name table.
    pub(crate) fn fake_module(modinfo: &[u8]) -> Vec<u8> {
        let shstr = b"\0.modinfo\0.shstrtab\0";
        let mut f = vec![0u8; 64];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // 64-bit
        f[5] = 1; // little endian
        f[6] = 1;
        f[16..18].copy_from_slice(&1u16.to_le_bytes()); // ET_REL
        f[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86_64
        f[20..24].copy_from_slice(&1u32.to_le_bytes());
        let modinfo_off = f.len();
        f.extend_from_slice(modinfo);
        let shstr_off = f.len();
        f.extend_from_slice(shstr);
        while !f.len().is_multiple_of(8) {
            f.push(0);
        }
        let shoff = f.len();
        let sh = |name: u32, ty: u32, off: usize, size: usize| {
            let mut s = vec![0u8; 64];
            s[0..4].copy_from_slice(&name.to_le_bytes());
            s[4..8].copy_from_slice(&ty.to_le_bytes());
            s[24..32].copy_from_slice(&(off as u64).to_le_bytes());
            s[32..40].copy_from_slice(&(size as u64).to_le_bytes());
            s
        };
        let mut table = sh(0, 0, 0, 0);
        table.extend(sh(1, 1, modinfo_off, modinfo.len()));
        table.extend(sh(10, 3, shstr_off, shstr.len()));
        f.extend(table);
        f[40..48].copy_from_slice(&(shoff as u64).to_le_bytes());
        f[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
        f[58..60].copy_from_slice(&64u16.to_le_bytes()); // shentsize
        f[60..62].copy_from_slice(&3u16.to_le_bytes()); // shnum
        f[62..64].copy_from_slice(&2u16.to_le_bytes()); // shstrndx
        f
    }

    const INFO: &[u8] = b"license=GPL\0firmware=a/b.bin\0alias=x\0firmware=c.fw\0";

    #[test]
    fn reads_firmware_from_plain_and_compressed_modules() {
        let plain = fake_module(INFO);
        let want = vec!["a/b.bin".to_string(), "c.fw".to_string()];
        assert_eq!(firmware(Path::new("m.ko"), plain.clone()).unwrap(), want);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        assert_eq!(
            firmware(Path::new("m.ko.gz"), gz.finish().unwrap()).unwrap(),
            want
        );

        let zst = zstd::encode_all(&plain[..], 3).unwrap();
        assert_eq!(firmware(Path::new("m.ko.zst"), zst).unwrap(), want);

        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &plain[..], &mut xz).unwrap();
        assert_eq!(firmware(Path::new("m.ko.xz"), xz).unwrap(), want);
    }

    #[test]
    fn piecewise_reader_matches_whole_file_reader() {
        let tmp = tempfile::tempdir().unwrap();
        let plain = fake_module(INFO);
        let p = tmp.path().join("m.ko");
        std::fs::write(&p, &plain).unwrap();
        assert_eq!(
            firmware_of_file(&p).unwrap(),
            vec!["a/b.bin".to_string(), "c.fw".to_string()]
        );
        let z = tmp.path().join("m.ko.zst");
        std::fs::write(&z, zstd::encode_all(&plain[..], 3).unwrap()).unwrap();
        assert_eq!(
            firmware_of_file(&z).unwrap(),
            vec!["a/b.bin".to_string(), "c.fw".to_string()]
        );
        for cut in [0, 10, 63, 100, plain.len() - 1] {
            std::fs::write(&p, &plain[..cut]).unwrap();
            assert!(firmware_of_file(&p).is_err(), "cut at {cut} accepted");
        }
    }

    #[test]
    fn bad_modules_are_errors_not_panics() {
        let plain = fake_module(INFO);
        for cut in [0, 10, 63, 100, plain.len() - 1] {
            let r = firmware(Path::new("m.ko"), plain[..cut].to_vec());
            assert!(r.is_err(), "cut at {cut} accepted");
        }
        assert!(firmware(Path::new("m.ko.zst"), b"not zstd".to_vec()).is_err());
        assert!(firmware(Path::new("m.ko.gz"), b"not gzip".to_vec()).is_err());
        assert!(firmware(Path::new("m.ko.xz"), b"not xz".to_vec()).is_err());
    }

    #[test]
    fn reads_a_real_module_when_present() {
        // The host kernel's modules (linux-image-amd64 in CI): every module parses.
        let Some(kdir) = std::fs::read_dir("/lib/modules")
            .ok()
            .and_then(|mut d| d.next())
        else {
            return;
        };
        let dir = kdir.unwrap().path().join("kernel/fs/fat");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for e in entries {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            assert_eq!(firmware(&p, bytes).unwrap(), firmware_of_file(&p).unwrap());
        }
    }
}
