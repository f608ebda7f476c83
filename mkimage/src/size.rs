//! Image sizes: `--size` parsing (`256M`, `1G`, `64MiB`, plain bytes), the default size of a vfat
//! image, and the short display used in messages.
//!
//! Units are binary (K = 1024), as `truncate -s` and `dd` read them. The default leaves room to
//! grow on a writable stick (apk cache, `lbu commit`): content + 25 % + 8 MiB, rounded up to a
//! MiB, and never below [`MIN_SIZE`]. FAT32 needs at least 65525 clusters (about 33 MiB with
//! 512-byte clusters); 64 MiB keeps a margin and still fits any USB stick sold today.

/// Smallest vfat image we write (explicit `--size` included).
pub const MIN_SIZE: u64 = 64 << 20;

/// Largest vfat image: FAT32 counts 512-byte sectors in 32 bits.
pub const MAX_SIZE: u64 = (u32::MAX as u64) * 512;

const MIB: u64 = 1 << 20;

/// Parses `--size`: a number with an optional binary suffix `K`, `M`, `G` or `T` (optionally
/// followed by `iB` or `B`, any case). The result must be a multiple of 512 (a sector).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!("\"{text}\" is not a size (examples: 256M, 1G)"));
    }
    let number: u64 = t[..digits]
        .parse()
        .map_err(|_| format!("\"{text}\" is too large"))?;
    let suffix = t[digits..].to_ascii_uppercase();
    let shift = match suffix.as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => {
            return Err(format!(
                "\"{text}\": unknown unit (use K, M, G or T, e.g. 256M)"
            ))
        }
    };
    let bytes = number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("\"{text}\" is too large"))?;
    if bytes % 512 != 0 {
        return Err(format!("\"{text}\" is not a multiple of 512 bytes"));
    }
    Ok(bytes)
}

/// The default vfat image size for `content` bytes of files and directories.
pub fn default_size(content: u64) -> u64 {
    let wanted = content + content / 4 + 8 * MIB;
    wanted.div_ceil(MIB).saturating_mul(MIB).max(MIN_SIZE)
}

/// `bytes` rounded up to whole MiB, in `--size` syntax (`80M`, or `2G` when exact).
pub fn display(bytes: u64) -> String {
    let mib = bytes.div_ceil(MIB);
    if mib >= 1024 && mib.is_multiple_of(1024) {
        format!("{}G", mib / 1024)
    } else {
        format!("{mib}M")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_with_binary_units() {
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("67108864"), Ok(64 << 20));
        assert_eq!(parse_size(" 100M "), Ok(100 << 20));
    }

    #[test]
    fn refuses_bad_sizes() {
        assert!(parse_size("").unwrap_err().contains("not a size"));
        assert!(parse_size("M").unwrap_err().contains("not a size"));
        assert!(parse_size("-1M").unwrap_err().contains("not a size"));
        assert!(parse_size("1.5G").unwrap_err().contains("unknown unit"));
        assert!(parse_size("10X").unwrap_err().contains("unknown unit"));
        assert!(parse_size("1000").unwrap_err().contains("multiple of 512"));
        assert!(parse_size("99999999999999999999")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_size("99999999999T")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn default_size_has_headroom_and_a_floor() {
        assert_eq!(default_size(0), MIN_SIZE);
        assert_eq!(default_size(40 * MIB), MIN_SIZE);
        // 100 MiB + 25 MiB + 8 MiB.
        assert_eq!(default_size(100 * MIB), 133 * MIB);
        // Rounded up to a MiB.
        assert_eq!(default_size(100 * MIB + 1), 134 * MIB);
    }

    #[test]
    fn displays_in_size_syntax() {
        assert_eq!(display(64 << 20), "64M");
        assert_eq!(display((64 << 20) + 1), "65M");
        assert_eq!(display(2 << 30), "2G");
        assert_eq!(display(1536 << 20), "1536M");
    }
}
