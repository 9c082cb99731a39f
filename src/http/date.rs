//! Clock formats: the HTTP `Date` value (RFC 9110 §5.6.7 IMF-fixdate) and the
//! error log's timestamp, both from the system clock in UTC.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC calendar time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday.
    pub weekday: u32,
}

impl UtcTime {
    pub fn from_unix(secs: i64) -> UtcTime {
        let days = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400) as u32;
        // Civil-from-days (H. Hinnant's algorithm), eras of 400 years.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        UtcTime {
            year,
            month,
            day,
            hour: of_day / 3600,
            minute: of_day / 60 % 60,
            second: of_day % 60,
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }

    pub fn now() -> UtcTime {
        UtcTime::from_unix(unix_now())
    }

    /// `Sun, 06 Nov 1994 08:49:37 GMT`
    pub fn http_date(&self) -> String {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        format!(
            "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
            DAYS[self.weekday as usize],
            self.day,
            MONTHS[self.month as usize - 1],
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }

    /// `2026-11-22 07:31:58 +0000`, as Gunicorn's error log writes it.
    pub fn log_stamp(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +0000",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

thread_local! {
    static CACHED_DATE: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
}

/// Calls `f` with the current `Date` value, formatted at most once a second per thread.
pub fn with_http_date<R>(f: impl FnOnce(&str) -> R) -> R {
    CACHED_DATE.with(|cell| {
        let now = unix_now();
        let mut cached = cell.borrow_mut();
        if cached.0 != now {
            *cached = (now, UtcTime::from_unix(now).http_date());
        }
        f(&cached.1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_rfc_example() {
        assert_eq!(
            UtcTime::from_unix(784_111_777).http_date(),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }

    #[test]
    fn handles_leap_days_and_the_epoch() {
        assert_eq!(
            UtcTime::from_unix(0).log_stamp(),
            "1970-01-01 00:00:00 +0000"
        );
        assert_eq!(
            UtcTime::from_unix(1_709_164_800).http_date(),
            "Thu, 29 Feb 2024 00:00:00 GMT"
        );
    }
}
