//! The part of `levee hunt --json` the report reads. Read tolerantly: a
//! field hunt does not write is empty, never an error, so that findings
//! from an older or newer hunt still make a report.

use serde::Deserialize;

/// What `levee hunt --json` wrote.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Hunt {
    pub files: Vec<HuntFile>,
    pub records: u64,
    pub malformed: u64,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    pub rules_loaded: usize,
    pub correlations_loaded: usize,
    pub iocs_loaded: usize,
    pub findings: Vec<RuleFinding>,
    pub ioc_findings: Vec<IocHit>,
    pub detections: Vec<Detection>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HuntFile {
    pub path: String,
    pub lines: u64,
}

/// A Sigma rule's finding (its author kept: Detection Rule License).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RuleFinding {
    pub title: String,
    pub rule_id: String,
    pub level: String,
    pub author: String,
    pub count: u64,
    pub clients: u64,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// A known indicator of compromise seen in the logs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IocHit {
    pub kind: String,
    pub value: String,
    pub source: String,
    pub count: u64,
    pub clients: u64,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// An exfiltration or abuse detector's finding.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Detection {
    pub detector: String,
    pub level: String,
    pub client: String,
    pub summary: String,
    pub requests: u64,
    pub records_served: u64,
    pub bytes_served: u64,
    pub first_ms: i64,
    pub last_ms: i64,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Sample {
    pub file: String,
    pub line: u64,
    pub text: String,
}

impl Detection {
    /// Whether the finding is about data leaving (not probing or abuse).
    pub fn is_exfiltration(&self) -> bool {
        matches!(
            self.detector.as_str(),
            "egress_outlier" | "personal_data_bulk" | "export_without_login" | "bulk_download"
        ) || (self.detector == "id_enumeration" && self.records_served > 0)
    }

    /// The request paths of its samples (`"GET /path HTTP/1.1"` in a line).
    pub fn paths(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in &self.samples {
            for m in ["\"GET ", "\"POST ", "\"HEAD ", "\"PUT "] {
                if let Some(i) = s.text.find(m) {
                    let rest = &s.text[i + m.len()..];
                    let p = rest.split([' ', '"', '?']).next().unwrap_or("");
                    if !p.is_empty() && !out.iter().any(|o| o == p) {
                        out.push(p.to_string());
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_missing_fields_are_tolerated_and_paths_read_from_samples() {
        let h: Hunt = serde_json::from_str(
            r#"{"records": 3, "new_field": 1, "detections": [{"detector": "bulk_download",
            "client": "192.0.2.1", "records_served": 0,
            "samples": [{"text": "192.0.2.1 - - [x] \"GET /backup/db.zip?x=1 HTTP/1.1\" 200 9"}]}]}"#,
        )
        .unwrap();
        assert_eq!(h.records, 3);
        assert!(h.detections[0].is_exfiltration());
        assert_eq!(h.detections[0].paths(), vec!["/backup/db.zip"]);
    }
}
