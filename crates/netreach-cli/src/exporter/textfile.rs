//! node_exporter's textfile collector: the metrics written to a `.prom` file, atomically (a
//! temporary file in the same directory, then rename) and only when they changed.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::metrics;
use super::registry::Registry;
use super::text::Format;

/// Checks at start-up that the file can be written where asked: its directory exists and is a
/// directory. The error names the path (exit 2: the user gave it).
pub(crate) fn check(path: &Path) -> Result<(), String> {
    let dir = directory(path);
    match fs::metadata(&dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!("--textfile {}: {} is not a directory", path.display(), dir.display())),
        Err(e) => Err(format!("--textfile {}: directory {}: {e}", path.display(), dir.display())),
    }
    .and_then(|()| match path.file_name() {
        Some(_) => Ok(()),
        None => Err(format!("--textfile {}: names no file", path.display())),
    })
}

fn directory(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Writes `text` to `path` atomically: readers see the old file or the new one, never a part.
pub(crate) fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // A dot-file: node_exporter reads only `*.prom`, so it never sees the temporary file.
    let temp = directory(path).join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Writes the file now, then again after every change that alters it, from its own thread.
/// It sleeps until a change: no timer. A failed write is reported (escaped) and retried at
/// the next change.
pub(crate) fn start(path: PathBuf, registry: Arc<Registry>) -> Result<(), String> {
    let mut last = String::new();
    let mut write = move |registry: &Registry| {
        let text = metrics::render(registry, Format::Prometheus);
        if text != last {
            match write_atomically(&path, &text) {
                Ok(()) => last = text,
                Err(e) => crate::terminal::error_line(&format!("netreach: writing {}: {e}", path.display())),
            }
        }
    };
    let mut seen = registry.changes.current();
    write(&registry);
    std::thread::Builder::new()
        .name("textfile".into())
        .spawn(move || loop {
            seen = registry.changes.wait_past(seen);
            write(&registry);
        })
        .map(drop)
        .map_err(|e| format!("starting the textfile writer: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_replaced_whole_and_no_temporary_file_stays() {
        let dir = std::env::temp_dir().join(format!("netreach-textfile-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("netreach.prom");
        write_atomically(&file, "a 1\n").unwrap();
        write_atomically(&file, "a 2\n").unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "a 2\n");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "only the file itself");
        assert!(check(&file).is_ok());
        let missing = dir.join("missing/netreach.prom");
        assert!(check(&missing).unwrap_err().contains("missing"), "{:?}", check(&missing));
        fs::remove_dir_all(&dir).unwrap();
    }
}
