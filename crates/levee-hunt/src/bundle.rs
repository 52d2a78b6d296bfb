//! The SigmaHQ rules bundled in the binary: every web server and proxy rule
//! of a dated snapshot of github.com/SigmaHQ/sigma (`rules/sigmahq`,
//! refreshed by `scripts/update-sigma-bundle.sh`), under the Detection Rule
//! License 1.1. Each bundled rule is named by its address in that
//! repository at the snapshot's commit (the licence asks for a link to the
//! rule), and its findings keep its author.

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/sigma_bundle.rs"));
}

/// Where the rules come from.
pub const SOURCE: &str = "https://github.com/SigmaHQ/sigma";

/// The snapshot bundled: its commit, date and number of rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    pub commit: String,
    pub date: String,
    pub rules: usize,
    pub licence: &'static str,
}

/// The snapshot, from its SNAPSHOT file (`None` when nothing is bundled).
pub fn snapshot() -> Option<Snapshot> {
    if embedded::RULES.is_empty() {
        return None;
    }
    let field = |k: &str| {
        embedded::SNAPSHOT
            .lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix(' '))
            .unwrap_or("unknown")
            .trim()
            .to_string()
    };
    Some(Snapshot {
        commit: field("commit"),
        date: field("date"),
        rules: embedded::RULES.len(),
        licence: "Detection Rule License (DRL) 1.1",
    })
}

/// The Detection Rule License's text.
pub fn licence_text() -> &'static str {
    embedded::LICENCE
}

/// The bundled rules as (name, text): the name is the rule's address in
/// SigmaHQ/sigma at the snapshot's commit.
pub fn rules() -> impl Iterator<Item = (String, &'static str)> {
    let commit = snapshot().map(|s| s.commit).unwrap_or_default();
    embedded::RULES
        .iter()
        .map(move |(path, text)| (format!("{SOURCE}/blob/{commit}/{path}"), *text))
}

/// The top-level `id` of each YAML document of a rule file, read from
/// the text without parsing it (`None` unless every document has exactly
/// one, unquoted or plainly quoted): a bundled file whose every id a given
/// rule replaces need not be parsed at all.
pub fn ids(text: &str) -> Option<Vec<&str>> {
    let mut ids = Vec::new();
    let mut docs = 0;
    let mut in_doc = false;
    for line in text.lines() {
        if line.trim_end() == "---" {
            in_doc = false;
            continue;
        }
        if !in_doc && !line.trim().is_empty() && !line.starts_with('#') {
            in_doc = true;
            docs += 1;
        }
        if let Some(v) = line.strip_prefix("id:") {
            let v = v.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .unwrap_or(v);
            let plain = !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !plain {
                return None;
            }
            ids.push(v);
        }
    }
    (docs > 0 && ids.len() == docs).then_some(ids)
}

/// One line for `--help` and the report: what is bundled.
pub fn describe() -> String {
    match snapshot() {
        Some(s) => format!(
            "{} SigmaHQ web and proxy rules, snapshot of {} (commit {}), under the {}",
            s.rules,
            s.date,
            s.commit.get(..12).unwrap_or(&s.commit),
            s.licence
        ),
        None => "no SigmaHQ rules bundled in this build".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_is_there_with_its_snapshot_licence_and_authors() {
        let s = snapshot().unwrap();
        assert!(s.rules > 100, "{s:?}");
        assert_eq!(s.commit.len(), 40, "{s:?}");
        assert!(
            jiff::civil::Date::strptime("%Y-%m-%d", &s.date).is_ok(),
            "{s:?}"
        );
        assert!(licence_text().starts_with("# Detection Rule License (DRL) 1.1"));
        let mut authors = 0;
        for (name, text) in rules() {
            assert!(
                name.starts_with("https://github.com/SigmaHQ/sigma/blob/"),
                "{name}"
            );
            authors += usize::from(text.contains("\nauthor:"));
        }
        assert!(
            authors * 10 >= s.rules * 9,
            "{authors} of {} name their author",
            s.rules
        );
    }

    #[test]
    fn ids_are_read_only_when_every_document_has_one() {
        assert_eq!(ids("title: a\nid: 1-a\ndetection: {}\n"), Some(vec!["1-a"]));
        assert_eq!(ids("id: 'x'\n---\nid: \"y\"\n"), Some(vec!["x", "y"]));
        assert_eq!(ids("---\n# c\ntitle: a\nid: z\n"), Some(vec!["z"]));
        // A document without an id, a nested id, or an odd value: parse it.
        assert_eq!(ids("id: x\n---\ntitle: b\n"), None);
        assert_eq!(ids("title: a\n  id: x\n"), None);
        assert_eq!(ids("id: x # comment\n"), None);
        assert_eq!(ids(""), None);
    }

    /// Every bundled file's ids, where read, are the ids its parse gives.
    #[test]
    fn the_ids_read_are_the_ids_parsed() {
        let mut read = 0;
        for (name, text) in rules() {
            let Some(ids) = ids(text) else { continue };
            read += 1;
            let parsed: Vec<String> = levee_sigma::load_all(text, &name)
                .into_iter()
                .filter_map(Result::ok)
                .map(|l| match l {
                    levee_sigma::Loaded::Rule(r) => r.id,
                    levee_sigma::Loaded::Correlation(c) => c.id,
                })
                .collect();
            assert_eq!(ids, parsed, "{name}");
        }
        assert!(read > 100, "{read} files read");
    }
}
