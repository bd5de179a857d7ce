//! Human output made safe for a terminal.
//!
//! Much of what `netreach` prints comes from outside: portal URLs from a `Location` header,
//! HTTP reasons, interface names from the kernel (any byte but `/`, `:` and whitespace is a
//! legal one), NetworkManager and Windows strings, and error messages quoting any of them.
//! Printed raw, an ESC, a UTF-8 encoded C1 control (CSI U+009B, OSC U+009D) or a bidi override
//! (U+202E) in one of them would drive the reader's terminal: clear it, set its title, or make
//! text read backwards.
//!
//! Why one choke point rather than a wrapper at each interpolated value: a wrapper forgotten at
//! one `format!` among dozens is a silent hole, and the next renderer written would repeat the
//! risk. Here the renderers build [`Lines`] with values raw, and the only way out of a `Lines`
//! is [`Lines::escaped`], which escapes every character of every line; our own line
//! structure is the list itself, so a newline inside a value is escaped like any other control
//! and cannot start a line of its own. Messages for stderr (clap's usage errors included) go
//! through [`error_line`] the same way, and the crate's `clippy.toml` refuses `println!`/`eprintln!` so no text can go around
//! both. JSON output does not pass here: it stays exact (serde escapes what JSON requires).
//!
//! A backslash is left as is: the escaped form is for reading, not for decoding (JSON is the
//! exact form), and the byte escapes (`\xNN`) of non-UTF-8 names made by the library stay as
//! they are. C1 controls are written `\u{9b}`, never `\x9b`, so they cannot be mistaken for
//! such a raw byte.

use std::io::Write;

/// Whether `c` may change what a terminal shows beyond printing a glyph, or hide text: the
/// Unicode general categories Cc (C0, DEL, C1 controls), Cf (format characters: bidi marks,
/// embeddings, overrides and isolates, zero-width characters, tags) and Zl/Zp (line and
/// paragraph separators), as of Unicode 15.1.
pub(crate) fn is_unsafe(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00..=0x1F | 0x7F..=0x9F // C0, DEL, C1
        | 0xAD // soft hyphen: invisible
        | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 // Arabic letter mark (bidi) ...
        | 0x180E
        | 0x200B..=0x200F // zero-width space/joiners, LRM, RLM
        | 0x2028..=0x202E // line and paragraph separators, bidi embeddings and overrides
        | 0x2060..=0x206F // word joiner, invisible operators, bidi isolates, deprecated formats
        | 0xFEFF // zero-width no-break space
        | 0xFFF9..=0xFFFB // interlinear annotations
        | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        | 0xE0001 | 0xE0020..=0xE007F // tags: invisible ASCII look-alikes
    )
}

/// Appends `text` to `out` with every [`is_unsafe`] character written as a visible escape:
/// `\n`, `\r`, `\t`, `\x1b` (other C0 and DEL), `\u{9b}` (everything else).
pub(crate) fn escape_into(out: &mut String, text: &str) {
    use std::fmt::Write as _;
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii() && is_unsafe(c) => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// `text` with every [`is_unsafe`] character escaped (see [`escape_into`]).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// Human output as rendered: whole lines, without their line breaks, with outside values raw.
/// It reaches a terminal only escaped (see the module comment).
#[derive(Debug, Default)]
pub(crate) struct Lines(Vec<String>);

impl Lines {
    /// Output of one line.
    pub(crate) fn one(line: String) -> Lines {
        Lines(vec![line])
    }

    /// Adds a line at the end.
    pub(crate) fn push(&mut self, line: String) {
        self.0.push(line);
    }

    /// Adds `other`'s lines at the end.
    pub(crate) fn append(&mut self, other: Lines) {
        self.0.extend(other.0);
    }

    /// How many lines.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Every line, escaped, each followed by `\n`: the only way out of a `Lines`.
    pub(crate) fn escaped(&self) -> String {
        let mut out = String::new();
        for line in &self.0 {
            escape_into(&mut out, line);
            out.push('\n');
        }
        out
    }
}

/// Writes `message` to stderr, escaped, as one line. Like `eprintln!`, a failing stderr is not
/// worth failing for, so errors are ignored (but, unlike it, never panics).
pub(crate) fn error_line(message: &str) {
    let mut line = escape(message);
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The characters the terminal-injection issue names, as a check independent of the table.
    fn named_in_the_issue(c: char) -> bool {
        let n = u32::from(c);
        (n < 0x20 || (0x7F..=0x9F).contains(&n))
            || [0x61C, 0x200E, 0x200F].contains(&n)
            || (0x202A..=0x202E).contains(&n)
            || (0x2066..=0x2069).contains(&n)
    }

    #[test]
    fn escapes_table() {
        let table = [
            ("eth0", "eth0"),
            ("e\u{1b}[31m", "e\\x1b[31m"),
            ("a\nb\r\tc", "a\\nb\\r\\tc"),
            ("\0\u{7f}", "\\x00\\x7f"),
            ("http://x/\u{9b}2J\u{9d}0;pwned\u{9c}", "http://x/\\u{9b}2J\\u{9d}0;pwned\\u{9c}"),
            ("abc\u{202e}gnp.exe", "abc\\u{202e}gnp.exe"),
            ("\u{2066}x\u{2069}\u{61c}\u{200e}\u{200f}", "\\u{2066}x\\u{2069}\\u{61c}\\u{200e}\\u{200f}"),
            ("zero\u{200b}width\u{feff}", "zero\\u{200b}width\\u{feff}"),
            ("tag\u{e0041}", "tag\\u{e0041}"),
            ("line\u{2028}sep", "line\\u{2028}sep"),
            // Printable text from outside stays as it is, backslashes included.
            ("café ≠ 東京 🙂 C:\\x", "café ≠ 東京 🙂 C:\\x"),
        ];
        for (raw, want) in table {
            assert_eq!(escape(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn every_char_is_either_kept_or_made_visible() {
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            let escaped = escape(&c.to_string());
            assert!(!escaped.chars().any(is_unsafe), "{c:?} -> {escaped:?}");
            if is_unsafe(c) {
                assert!(escaped.starts_with('\\') && escaped.is_ascii(), "{c:?} -> {escaped:?}");
                // Every character of the table is one Rust itself would not print raw either
                // (catches a typo in a range).
                assert_ne!(c.escape_debug().to_string(), c.to_string(), "{c:?}");
            } else {
                assert_eq!(escaped, c.to_string());
            }
            assert!(!named_in_the_issue(c) || is_unsafe(c), "{c:?}");
        }
    }

    /// Property: the escaped form of any string, however it mixes unsafe characters with
    /// others, holds no unsafe character, and only the escapes differ from the input.
    #[test]
    fn escaped_strings_never_hold_an_unsafe_char() {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            // xorshift64*: deterministic, so a failure reproduces.
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        let pool =
            ['\u{1b}', '\n', '\u{9b}', '\u{9d}', '\u{9c}', '\u{202e}', '\u{2066}', '\\', 'a', '[', 'é', '\u{e007f}'];
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let text: String = (0..len)
                .map(|_| match next() % 3 {
                    0 => pool[(next() % pool.len() as u64) as usize],
                    _ => char::from_u32((next() % 0x11_0000) as u32).unwrap_or('\u{fffd}'),
                })
                .collect();
            let escaped = escape(&text);
            assert!(!escaped.chars().any(is_unsafe), "{text:?} -> {escaped:?}");
            let kept: String = text.chars().filter(|&c| !is_unsafe(c)).collect();
            let unescaped_part: String = escaped.chars().filter(|c| !c.is_ascii()).collect();
            let kept_non_ascii: String = kept.chars().filter(|c| !c.is_ascii()).collect();
            assert_eq!(unescaped_part, kept_non_ascii, "{text:?}");
        }
    }

    #[test]
    fn lines_keep_only_their_own_line_breaks() {
        let mut lines = Lines::one("interfaces:".into());
        lines.push("  3: evil\nreachability: online (kernel)".into());
        lines.append(Lines::one("\u{9b}2J".into()));
        assert_eq!(lines.escaped(), "interfaces:\n  3: evil\\nreachability: online (kernel)\n\\u{9b}2J\n");
        assert_eq!(Lines::default().escaped(), "");
    }
}
