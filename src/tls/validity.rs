//! The validity period of an X.509 certificate (RFC 5280 §4.1.2.5), read
//! from its DER: rustls checks a client's certificate dates but not the
//! server's own, and a server that starts with an expired certificate only
//! fails later, in every client's handshake.

/// When a certificate starts and stops being valid, in seconds since the
/// Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: i64,
    pub not_after: i64,
}

/// The validity of the DER certificate `der`, or `None` if it is not a
/// certificate this reader understands.
pub fn validity(der: &[u8]) -> Option<Validity> {
    const SEQUENCE: u8 = 0x30;
    const VERSION: u8 = 0xa0;
    let (certificate, _) = element(der, SEQUENCE)?;
    let (mut tbs, _) = element(certificate, SEQUENCE)?;
    if tbs.first() == Some(&VERSION) {
        tbs = element(tbs, VERSION)?.1;
    }
    // serialNumber, signature, issuer: skipped whatever their tags.
    for _ in 0..3 {
        tbs = any_element(tbs)?.1;
    }
    let (validity, _) = element(tbs, SEQUENCE)?;
    let (not_before, rest) = time(validity)?;
    let (not_after, _) = time(rest)?;
    Some(Validity {
        not_before,
        not_after,
    })
}

/// The contents of the element at the start of `input` if its tag is `tag`,
/// and what follows it.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match input.first() {
        Some(&found) if found == tag => any_element(input),
        _ => None,
    }
}

fn any_element(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let first_length = *input.get(1)?;
    let (length, header) = match first_length {
        short @ 0..=0x7f => (short as usize, 2),
        0x81..=0x84 => {
            let count = (first_length & 0x7f) as usize;
            let bytes = input.get(2..2 + count)?;
            let length = bytes.iter().fold(0usize, |n, b| (n << 8) | *b as usize);
            (length, 2 + count)
        }
        _ => return None,
    };
    let end = header.checked_add(length)?;
    Some((input.get(header..end)?, input.get(end..)?))
}

/// A `Time` (UTCTime or GeneralizedTime, RFC 5280 §4.1.2.5.1/.2, both in
/// UTC with seconds) as seconds since the epoch, and what follows it.
fn time(input: &[u8]) -> Option<(i64, &[u8])> {
    const UTC_TIME: u8 = 0x17;
    const GENERALIZED_TIME: u8 = 0x18;
    let tag = *input.first()?;
    let (text, rest) = any_element(input)?;
    let digits = text.strip_suffix(b"Z")?;
    let (year, digits) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            // RFC 5280: YY >= 50 is 19YY, else 20YY.
            let yy = number(&digits[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (GENERALIZED_TIME, 14) => (number(&digits[..4])?, &digits[4..]),
        _ => return None,
    };
    let field = |i: usize| number(&digits[i..i + 2]);
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86400 + hour * 3600 + minute * 60 + second, rest))
}

fn number(digits: &[u8]) -> Option<i64> {
    digits.iter().try_fold(0i64, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
    })
}

/// Days from 1970-01-01 to the given date of the proleptic Gregorian
/// calendar (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146097 + day_of_era - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.extend([0x82, (content.len() >> 8) as u8, content.len() as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    /// A certificate skeleton: what the reader walks, with filler elsewhere.
    fn certificate(version: bool, not_before: (u8, &str), not_after: (u8, &str)) -> Vec<u8> {
        let mut tbs = Vec::new();
        if version {
            tbs.extend(tlv(0xa0, &tlv(0x02, &[2])));
        }
        tbs.extend(tlv(0x02, &[0x01, 0x02]));
        tbs.extend(tlv(0x30, &tlv(0x06, &[0x2a, 0x86])));
        tbs.extend(tlv(0x30, &tlv(0x31, b"issuer")));
        let mut validity = tlv(not_before.0, not_before.1.as_bytes());
        validity.extend(tlv(not_after.0, not_after.1.as_bytes()));
        tbs.extend(tlv(0x30, &validity));
        tbs.extend(tlv(0x30, &[0x41; 300]));
        let mut certificate = tlv(0x30, &tbs);
        certificate.extend(tlv(0x30, &[0x06, 0x00]));
        tlv(0x30, &certificate)
    }

    #[test]
    fn reads_utc_and_generalized_times() {
        let der = certificate(true, (0x17, "240101000000Z"), (0x18, "20500101120000Z"));
        assert_eq!(
            validity(&der),
            Some(Validity {
                not_before: 1_704_067_200,
                not_after: 2_524_651_200,
            })
        );
    }

    #[test]
    fn a_utc_year_of_50_or_more_is_in_the_1900s_and_version_is_optional() {
        let der = certificate(false, (0x17, "700101000001Z"), (0x17, "491231235959Z"));
        let read = validity(&der).unwrap();
        assert_eq!(read.not_before, 1);
        assert_eq!(read.not_after, 2_524_607_999);
    }

    #[test]
    fn anything_else_is_not_understood() {
        assert_eq!(validity(b""), None);
        assert_eq!(validity(b"-----BEGIN CERTIFICATE-----"), None);
        let local_time = certificate(true, (0x17, "240101000000"), (0x17, "250101000000Z"));
        assert_eq!(validity(&local_time), None);
        let mut truncated = certificate(true, (0x17, "240101000000Z"), (0x17, "250101000000Z"));
        truncated.truncate(40);
        assert_eq!(validity(&truncated), None);
    }
}
