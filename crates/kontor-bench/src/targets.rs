//! The targets a report checks (issue 12's, on this machine, as ratios measured in one run), and
//! whether each was met.

use std::fmt::Write as _;

use serde::Serialize;

/// One target and what the run measured for it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub name: String,
    /// The measured value, in the target's unit.
    pub measured: f64,
    /// `>=` or `<=`.
    pub relation: &'static str,
    pub limit: f64,
    pub unit: &'static str,
    /// `None` when the run was not set up as the target defines it (another offered rate, a
    /// phase with errors), so it says nothing either way.
    pub met: Option<bool>,
    /// Why the target was not checked, or what else to know about the figure.
    pub note: String,
}

impl Target {
    pub fn at_least(name: &str, measured: f64, limit: f64, unit: &'static str) -> Self {
        Self {
            name: name.to_owned(),
            measured,
            relation: ">=",
            limit,
            unit,
            met: Some(measured >= limit),
            note: String::new(),
        }
    }

    pub fn at_most(name: &str, measured: f64, limit: f64, unit: &'static str) -> Self {
        Self {
            name: name.to_owned(),
            measured,
            relation: "<=",
            limit,
            unit,
            met: Some(measured <= limit),
            note: String::new(),
        }
    }

    /// Leaves the target unchecked, saying why.
    pub fn unchecked(mut self, why: &str) -> Self {
        self.met = None;
        self.note = why.to_owned();
        self
    }

    /// Counts the target as missed, saying why (errors make a latency meaningless).
    pub fn missed(mut self, why: &str) -> Self {
        self.met = Some(false);
        self.note = why.to_owned();
        self
    }

    pub fn noted(mut self, note: &str) -> Self {
        self.note = note.to_owned();
        self
    }
}

/// The targets as a Markdown table.
pub fn markdown(targets: &[Target]) -> String {
    let mut md = String::from("| target | measured | limit | met |\n|---|---:|---:|---|\n");
    for t in targets {
        let met = match t.met {
            Some(true) => "**yes**",
            Some(false) => "**no**",
            None => "not checked",
        };
        let note = if t.note.is_empty() {
            String::new()
        } else {
            format!(" ({})", t.note)
        };
        let value = |x: f64| {
            if t.unit.is_empty() {
                format!("{x:.2}")
            } else {
                format!("{x:.2} {}", t.unit)
            }
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} {} | {met}{note} |",
            t.name,
            value(t.measured),
            t.relation,
            value(t.limit)
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_say_whether_they_were_met() {
        assert_eq!(Target::at_least("ratio", 0.61, 0.6, "").met, Some(true));
        assert_eq!(Target::at_least("ratio", 0.59, 0.6, "").met, Some(false));
        assert_eq!(Target::at_most("p99", 5.0, 5.0, "ms").met, Some(true));
        assert_eq!(Target::at_most("p99", 5.1, 5.0, "ms").met, Some(false));
        let skipped = Target::at_most("p99", 1.0, 5.0, "ms").unchecked("offered 900 req/s");
        assert_eq!(skipped.met, None);
        let md = markdown(&[skipped, Target::at_least("ratio", 0.3, 0.6, "")]);
        assert!(md.contains("not checked (offered 900 req/s)"), "{md}");
        assert!(md.contains("| ratio | 0.30 | >= 0.60 | **no** |"), "{md}");
    }
}
