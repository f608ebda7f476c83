//! The build date as calendar fields, in UTC.
//!
//! One time stamp (`SOURCE_DATE_EPOCH`, or now) dates the whole medium: file times in the tree
//! and the FAT image, the index and the release file's `YYMMDD`. UTC, because a FAT time has no
//! zone and Linux mounts vfat as UTC unless told otherwise; using the build host's zone would make
//! the bytes depend on where the image was built.

/// A UTC calendar date and time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    /// Full year.
    pub year: i64,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub min: u32,
    /// 0..=59.
    pub sec: u32,
}

impl Civil {
    /// Seconds since the epoch to UTC fields, through the `time` crate (the workspace's one
    /// calendar). A time past the crate's range (after 9999-12-31 23:59:59 UTC) is that last
    /// second: FAT stamps clamp at 2107 anyway, and a release id needs no later year.
    pub fn from_epoch(secs: u64) -> Civil {
        let t = i64::try_from(secs)
            .ok()
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .unwrap_or_else(|| time::PrimitiveDateTime::MAX.assume_utc());
        Civil {
            year: i64::from(t.year()),
            month: u32::from(u8::from(t.month())),
            day: u32::from(t.day()),
            hour: u32::from(t.hour()),
            min: u32::from(t.minute()),
            sec: u32::from(t.second()),
        }
    }

    /// `YYMMDD`, the date format of Alpine's `.alpine-release`.
    pub fn yymmdd(&self) -> String {
        format!(
            "{:02}{:02}{:02}",
            self.year.rem_euclid(100),
            self.month,
            self.day
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_to_civil() {
        let c = Civil::from_epoch(0);
        assert_eq!((c.year, c.month, c.day, c.hour), (1970, 1, 1, 0));
        // 2023-12-27 12:34:56 UTC, the fixture medium's release date.
        let c = Civil::from_epoch(1_703_680_496);
        assert_eq!(
            c,
            Civil {
                year: 2023,
                month: 12,
                day: 27,
                hour: 12,
                min: 34,
                sec: 56
            }
        );
        assert_eq!(c.yymmdd(), "231227");
        // A leap day.
        let c = Civil::from_epoch(951_782_400);
        assert_eq!((c.year, c.month, c.day), (2000, 2, 29));
        // Past the calendar's range: its last second, not a wrapped or invented date.
        let last = Civil {
            year: 9999,
            month: 12,
            day: 31,
            hour: 23,
            min: 59,
            sec: 59,
        };
        assert_eq!(Civil::from_epoch(253_402_300_799), last);
        assert_eq!(Civil::from_epoch(253_402_300_800), last);
        assert_eq!(Civil::from_epoch(u64::MAX), last);
    }
}
