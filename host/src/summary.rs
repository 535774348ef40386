//! The run's summary: what was patched, what failed and what was skipped and why; as JSON for
//! machines and as a table for people.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Planned,
    Patched,
    Failed,
}

#[derive(Clone, Debug, Serialize)]
pub struct UpdateRecord {
    pub ecosystem: String,
    pub target: String,
    pub package: String,
    pub from: String,
    pub to: String,
    pub fixes: Vec<String>,
    /// What the user must know about the update (the plugin's notes).
    pub notes: Vec<String>,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SkipRecord {
    pub ecosystem: String,
    pub target: String,
    pub package: String,
    pub vulnerabilities: Vec<String>,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub image: String,
    pub patched_image: Option<String>,
    pub updates: Vec<UpdateRecord>,
    pub skipped: Vec<SkipRecord>,
    /// How long each stage of the pipeline took, in order.
    pub timings: Vec<StageTiming>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StageTiming {
    pub stage: &'static str,
    pub seconds: f64,
}

/// Measures the pipeline's stages one after another.
pub struct Clock {
    last: std::time::Instant,
    timings: Vec<StageTiming>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            last: std::time::Instant::now(),
            timings: Vec::new(),
        }
    }
}

impl Clock {
    /// Ends the stage that ran since the previous lap.
    pub fn lap(&mut self, stage: &'static str) {
        let now = std::time::Instant::now();
        self.timings.push(StageTiming {
            stage,
            seconds: (now - self.last).as_secs_f64(),
        });
        self.last = now;
    }

    pub fn timings(&self) -> Vec<StageTiming> {
        self.timings.clone()
    }
}

impl Summary {
    pub fn to_json(&self) -> String {
        crate::http::redact_logins(
            &serde_json::to_string_pretty(self).expect("the summary is plain data"),
        )
    }

    /// The human form, for the terminal.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        if self.updates.is_empty() {
            out.push_str("No updates.\n");
        } else {
            let rows: Vec<[String; 5]> = self
                .updates
                .iter()
                .map(|u| {
                    let status = match (&u.status, &u.error) {
                        (Status::Failed, Some(e)) => format!("failed: {e}"),
                        (s, _) => format!("{s:?}").to_lowercase(),
                    };
                    [
                        u.target.clone(),
                        u.package.clone(),
                        format!("{} -> {}", u.from, u.to),
                        u.fixes.join(" "),
                        status,
                    ]
                })
                .collect();
            out.push_str(&table(
                ["TARGET", "PACKAGE", "UPDATE", "FIXES", "STATUS"],
                &rows,
            ));
            let notes: Vec<[String; 3]> = self
                .updates
                .iter()
                .flat_map(|u| {
                    u.notes
                        .iter()
                        .map(|note| [u.target.clone(), u.package.clone(), note.clone()])
                })
                .collect();
            if !notes.is_empty() {
                out.push_str("\nNotes:\n");
                out.push_str(&table(["TARGET", "PACKAGE", "NOTE"], &notes));
            }
        }
        if !self.skipped.is_empty() {
            out.push_str("\nSkipped:\n");
            let rows: Vec<[String; 4]> = self
                .skipped
                .iter()
                .map(|s| {
                    [
                        s.target.clone(),
                        s.package.clone(),
                        s.vulnerabilities.join(" "),
                        s.reason.clone(),
                    ]
                })
                .collect();
            out.push_str(&table(
                ["TARGET", "PACKAGE", "VULNERABILITIES", "REASON"],
                &rows,
            ));
        }
        match &self.patched_image {
            Some(image) => out.push_str(&format!("\nPatched image: {image}\n")),
            None => out.push_str("\nNo patched image written.\n"),
        }
        out
    }
}

fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == N {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_documented_shape() {
        let summary = Summary {
            image: "app:1".into(),
            patched_image: None,
            updates: vec![UpdateRecord {
                ecosystem: "pip".into(),
                target: "/app/venv".into(),
                package: "urllib3".into(),
                from: "1.26.4".into(),
                to: "1.26.5".into(),
                fixes: vec!["CVE-2021-33503".into()],
                notes: vec!["has an install script, which was not run".into()],
                status: Status::Planned,
                error: None,
            }],
            skipped: vec![],
            timings: vec![],
        };
        let value: serde_json::Value = serde_json::from_str(&summary.to_json()).unwrap();
        assert_eq!(value["patched_image"], serde_json::Value::Null);
        assert_eq!(value["updates"][0]["status"], "planned");
        assert_eq!(value["updates"][0]["from"], "1.26.4");
        assert!(value["updates"][0].get("error").is_none());
        assert_eq!(
            value["updates"][0]["notes"][0],
            "has an install script, which was not run"
        );
        let table = summary.to_table();
        assert!(table.contains("urllib3  1.26.4 -> 1.26.5"));
        assert!(
            table.contains("Notes:\nTARGET     PACKAGE  NOTE\n/app/venv  urllib3  has an install script, which was not run\n"),
            "{table}"
        );
    }
}
