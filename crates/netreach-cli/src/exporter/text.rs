//! The exposition formats: Prometheus text (0.0.4) and OpenMetrics text (1.0.0).
//!
//! Hand-made on purpose. The two Rust clients each speak one format (`prometheus-client`:
//! OpenMetrics only; `prometheus`: the 0.0.4 text only) and both keep their own registry of
//! long-lived series, while the exporter's series come and go with namespaces, interfaces and
//! paths and are produced afresh from the monitors' state at each scrape. What differs between
//! the formats is only the metadata (TYPE names, `info`/`stateset` types, `# EOF`); the
//! samples are the same lines, so one small writer serves both.

use std::fmt::Write as _;

/// Which format a scraper asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// `text/plain; version=0.0.4`: what Prometheus asks for by default, and node_exporter's
    /// textfile collector reads.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it is listed, else Prometheus
    /// text (as every Prometheus-compatible scraper accepts it).
    pub(crate) fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.split(',').any(|t| t.trim().starts_with("application/openmetrics-text")) => {
                Format::OpenMetrics
            }
            _ => Format::Prometheus,
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// A metric family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Gauge,
    /// Samples are named `NAME_total`.
    Counter,
    /// Samples are named `NAME_info`, valued 1; a gauge in Prometheus text.
    Info,
    /// One sample per state, the state in a label named like the family, valued 1 for the
    /// current state and 0 for the others; a gauge in Prometheus text.
    StateSet,
}

/// A metric family: its name (without `_total`/`_info`), type and help text.
pub(crate) struct Family {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) help: &'static str,
}

impl Family {
    /// The name its samples carry.
    pub(crate) fn sample_name(&self) -> String {
        match self.kind {
            Kind::Counter => format!("{}_total", self.name),
            Kind::Info => format!("{}_info", self.name),
            Kind::Gauge | Kind::StateSet => self.name.to_owned(),
        }
    }
}

/// Writes one exposition: families in the order given, each with its metadata and samples.
pub(crate) struct Writer {
    out: String,
    format: Format,
}

impl Writer {
    pub(crate) fn new(format: Format, capacity: usize) -> Writer {
        Writer { out: String::with_capacity(capacity), format }
    }

    /// The metadata of a family.
    fn header(&mut self, family: &Family) {
        let (name, kind) = match (self.format, family.kind) {
            (Format::OpenMetrics, Kind::Gauge) => (family.name.to_owned(), "gauge"),
            (Format::OpenMetrics, Kind::Counter) => (family.name.to_owned(), "counter"),
            (Format::OpenMetrics, Kind::Info) => (family.name.to_owned(), "info"),
            (Format::OpenMetrics, Kind::StateSet) => (family.name.to_owned(), "stateset"),
            (Format::Prometheus, Kind::Counter) => (family.sample_name(), "counter"),
            (Format::Prometheus, _) => (family.sample_name(), "gauge"),
        };
        let _ = writeln!(self.out, "# HELP {name} {}", family.help);
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// Writes a family: its metadata, then `samples` (lines made by [`sample`]); nothing at
    /// all when there are no samples.
    pub(crate) fn family(&mut self, family: &Family, samples: &str) {
        if samples.is_empty() {
            return;
        }
        self.header(family);
        self.out.push_str(samples);
    }

    /// The finished text (OpenMetrics ends with `# EOF`).
    pub(crate) fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }
}

/// Appends one sample line: `name{label="value",...} value`. The samples are the same in both
/// formats. Every sample of a family carries the same label names (node_exporter's textfile
/// collector refuses a family whose samples differ), so a label with nothing to say is written
/// empty, which Prometheus stores as absent.
pub(crate) fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, text)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            escape_into(out, text);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Label values escape backslash, double quote and newline (both formats); everything else,
/// including other control characters, is kept exact: the formats allow any UTF-8.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONLINE: Family = Family { name: "x_online", kind: Kind::Gauge, help: "Online." };
    const CHANGES: Family = Family { name: "x_changes", kind: Kind::Counter, help: "Changes." };
    const BUILD: Family = Family { name: "x_build", kind: Kind::Info, help: "Build." };

    fn one(family: &Family, labels: &[(&str, &str)], value: f64) -> String {
        let mut out = String::new();
        sample(&mut out, &family.sample_name(), labels, value);
        out
    }

    #[test]
    fn both_formats_share_samples_and_differ_in_metadata() {
        let write = |format| {
            let mut w = Writer::new(format, 0);
            w.family(&ONLINE, &one(&ONLINE, &[("device", "a\"b\\c\nd\u{1b}")], 1.0));
            w.family(&CHANGES, &one(&CHANGES, &[], 3.0));
            w.family(&BUILD, &one(&BUILD, &[("version", "0.1.0")], 1.0));
            w.family(&ONLINE, "");
            w.finish()
        };
        assert_eq!(
            write(Format::Prometheus),
            "# HELP x_online Online.\n# TYPE x_online gauge\nx_online{device=\"a\\\"b\\\\c\\nd\u{1b}\"} 1\n\
             # HELP x_changes_total Changes.\n# TYPE x_changes_total counter\nx_changes_total 3\n\
             # HELP x_build_info Build.\n# TYPE x_build_info gauge\nx_build_info{version=\"0.1.0\"} 1\n"
        );
        assert_eq!(
            write(Format::OpenMetrics),
            "# HELP x_online Online.\n# TYPE x_online gauge\nx_online{device=\"a\\\"b\\\\c\\nd\u{1b}\"} 1\n\
             # HELP x_changes Changes.\n# TYPE x_changes counter\nx_changes_total 3\n\
             # HELP x_build Build.\n# TYPE x_build info\nx_build_info{version=\"0.1.0\"} 1\n# EOF\n"
        );
    }

    #[test]
    fn the_accept_header_chooses_the_format() {
        assert_eq!(Format::negotiate(None), Format::Prometheus);
        assert_eq!(Format::negotiate(Some("text/plain;version=0.0.4;q=0.5,*/*;q=0.1")), Format::Prometheus);
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
    }

    #[test]
    fn timestamps_are_written_without_exponents() {
        let mut w = Writer::new(Format::Prometheus, 0);
        w.family(&ONLINE, &one(&ONLINE, &[], 1_764_650_000.125));
        assert!(w.finish().ends_with("x_online 1764650000.125\n"));
    }
}
