//! `--expect 'legit_success>=0.999'`: conditions on the drill's summary that
//! decide its exit status.

use serde_json::Value;

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    pub name: String,
    pub op: Op,
    pub value: f64,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ge,
    Le,
    Gt,
    Lt,
    Eq,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpectError {
    #[error("--expect {0:?}: write NAME OP NUMBER, e.g. 'legit_success>=0.999' (OP is >=, <=, >, <, ==)")]
    Syntax(String),
    #[error("--expect {0:?}: unknown measure {1:?}; known: {2}")]
    Unknown(String, String, String),
}

/// Parse `NAME OP NUMBER`.
pub fn parse(text: &str) -> Result<Expect, ExpectError> {
    let t = text.trim();
    for (sym, op) in [
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("==", Op::Eq),
        (">", Op::Gt),
        ("<", Op::Lt),
    ] {
        if let Some((name, value)) = t.split_once(sym) {
            let name = name.trim();
            let value: f64 = value
                .trim()
                .parse()
                .map_err(|_| ExpectError::Syntax(text.into()))?;
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(ExpectError::Syntax(text.into()));
            }
            return Ok(Expect {
                name: name.to_string(),
                op,
                value,
                text: t.to_string(),
            });
        }
    }
    Err(ExpectError::Syntax(text.into()))
}

impl Expect {
    /// Check against the summary (a JSON object of numbers). `Ok(None)`: it
    /// holds; `Ok(Some(msg))`: it does not, and why.
    pub fn check(&self, summary: &Value) -> Result<Option<String>, ExpectError> {
        let Some(v) = summary.get(&self.name) else {
            let known = summary
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            return Err(ExpectError::Unknown(
                self.text.clone(),
                self.name.clone(),
                known,
            ));
        };
        let Some(x) = v.as_f64() else {
            return Ok(Some(format!("{}: measured nothing (null)", self.text)));
        };
        let ok = match self.op {
            Op::Ge => x >= self.value,
            Op::Le => x <= self.value,
            Op::Gt => x > self.value,
            Op::Lt => x < self.value,
            Op::Eq => (x - self.value).abs() < f64::EPSILON,
        };
        Ok((!ok).then(|| format!("{} does not hold: {} = {x}", self.text, self.name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_check() {
        let e = parse("legit_success>=0.999").unwrap();
        assert_eq!(e.op, Op::Ge);
        let s = serde_json::json!({"legit_success": 0.9995, "legit_p99_ms": 60.0, "time_to_mitigate_s": null});
        assert_eq!(e.check(&s).unwrap(), None);
        let e = parse(" legit_p99_ms <= 50 ").unwrap();
        assert!(e.check(&s).unwrap().unwrap().contains("legit_p99_ms = 60"));
        assert!(parse("time_to_mitigate_s<=2")
            .unwrap()
            .check(&s)
            .unwrap()
            .is_some());
        assert!(matches!(parse("nope>=x"), Err(ExpectError::Syntax(_))));
        assert!(matches!(parse("a b>=1"), Err(ExpectError::Syntax(_))));
        assert!(matches!(
            parse("x>=1").unwrap().check(&s),
            Err(ExpectError::Unknown(..))
        ));
    }
}
