//! Configuration errors: the file, the line and the key path of what was wrong.

/// A configuration problem, located as precisely as the input allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {path}: {message}", line = line_display(*.line), path = path_display(.path))]
pub struct ConfigError {
    /// The file name as given by the caller (used only for the message).
    pub file: String,
    /// 1-based line of the offending key or value, when known.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `site[0].origin[1].address`.
    pub path: String,
    /// What is wrong and, where possible, what to do.
    pub message: String,
}

fn line_display(line: Option<usize>) -> String {
    line.map_or_else(|| "?".to_string(), |l| l.to_string())
}

fn path_display(path: &str) -> &str {
    if path.is_empty() || path == "." {
        "(top level)"
    } else {
        path
    }
}

pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Best-effort line for a key path found by validation (after parsing succeeded):
/// the line of the last key segment's `n`-th table header or key.
pub(crate) fn locate(text: &str, path: &str) -> Option<usize> {
    // Walk the path: each `name[i]` selects the i-th `[[name]]`-style header
    // occurrence after the current position; a plain `name` finds `name =`.
    let mut pos = 0usize;
    let mut prefix = String::new();
    for seg in path.split('.') {
        let (name, idx) = match seg.find('[') {
            Some(b) => {
                let idx = seg[b + 1..].trim_end_matches(']').parse::<usize>().ok()?;
                (&seg[..b], Some(idx))
            }
            None => (seg, None),
        };
        let full = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        match idx {
            Some(i) => {
                let header = format!("[[{full}]]");
                let mut found = None;
                let mut from = pos;
                for _ in 0..=i {
                    let at = text[from..].find(&header)? + from;
                    found = Some(at);
                    from = at + header.len();
                }
                match found {
                    Some(at) => pos = at,
                    None => {
                        // An inline array: find the key and stop.
                        let at = text[pos..].find(&format!("{name} ="))? + pos;
                        return Some(line_of(text, at));
                    }
                }
            }
            None => {
                let at = text[pos..]
                    .find(&format!("{name} ="))
                    .or_else(|| text[pos..].find(&format!("{name}=")))
                    .or_else(|| text[pos..].find(&format!("[{full}]")));
                pos += at?;
            }
        }
        prefix = full;
    }
    Some(line_of(text, pos))
}
