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
    /// Seconds since the epoch to UTC fields (Howard Hinnant's `civil_from_days`).
    pub fn from_epoch(secs: u64) -> Civil {
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            min: (rem / 60 % 60) as u32,
            sec: (rem % 60) as u32,
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
    }
}
