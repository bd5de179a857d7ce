//! DURATION options (`--timeout`, `--probe-timeout`): parsed once, bounded, so no deadline
//! arithmetic can overflow (`Instant + Duration` panics on overflow).

use std::time::{Duration, Instant};

/// The longest DURATION any option takes: 365 days. A longer value is refused on the command
/// line (exit 2) rather than silently shortened.
pub(crate) const MAX: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Parses a DURATION such as `500ms`, `30s`, `2m` or `0`, at most [`MAX`]. clap names the
/// option in its error, e.g. `invalid value '...' for '--timeout <DURATION>': ...`.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration > MAX {
        return Err("at most 365d (365 days)".into());
    }
    Ok(duration)
}

/// Like [`parse`], and above zero (a probe given no time at all could never answer).
pub(crate) fn parse_positive(text: &str) -> Result<Duration, String> {
    match parse(text)? {
        Duration::ZERO => Err("must be above zero, e.g. 3s".into()),
        duration => Ok(duration),
    }
}

/// The instant `timeout` from now; saturates far in the future instead of overflowing.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout).or_else(|| now.checked_add(MAX)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("365days"), Ok(MAX));
        assert!(parse("366days").unwrap_err().contains("at most"));
        assert!(parse("18446744073709551615s").unwrap_err().contains("at most"));
        assert!(parse("99999999999999999999999s").is_err());
        assert!(parse("soon").is_err());
        assert!(parse_positive("0").unwrap_err().contains("above zero"));
        assert!(parse_positive("0s").is_err());
        assert_eq!(parse_positive("3s"), Ok(Duration::from_secs(3)));
        assert!(deadline_after(MAX) > Instant::now());
        assert!(deadline_after(Duration::MAX) > Instant::now());
    }
}
