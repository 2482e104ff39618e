//! The Preview page: a family's dry run (what it would send per day over a range, for one
//! subject and a sample of simulated ones) as a chart. Which run, and what its subject is
//! called, the family says (`CommandFamily::dry_run`); nothing is sent or written.

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::auth::Signed;
use super::{Dashboard, chart};
use crate::family::DryRun;

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct PreviewForm {
    /// Which family's dry run (its command); empty: the first.
    #[serde(default)]
    run: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    sample: String,
}

pub async fn preview(
    State(dashboard): State<Dashboard>,
    Extension(signed): Extension<Signed>,
    Query(form): Query<PreviewForm>,
) -> Response {
    let runs = dashboard.0.families.dry_runs();
    let run = runs
        .iter()
        .find(|run| run.cmd == form.run)
        .or(runs.first())
        .copied();
    let asked = !form.subject.trim().is_empty();
    let (chart, error) = match (run, asked) {
        (Some(run), true) => match dry_run(&dashboard, run, &form).await {
            Ok(chart) => (Some(chart), None),
            Err(err) => (None, Some(err)),
        },
        _ => (None, None),
    };
    let runs: Vec<Value> = runs
        .iter()
        .map(|r| json!({ "cmd": r.cmd, "subject": r.subject, "sample": r.sample }))
        .collect();
    let content = json!({
        "runs": runs, "run": run.map(|r| json!({ "cmd": r.cmd, "subject": r.subject, "sample": r.sample })),
        "form": form, "chart": chart, "error": error,
    });
    let status = if content["error"].is_null() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut response = dashboard.show(&signed, "preview", "preview.html", content);
    *response.status_mut() = status;
    response
}

/// Runs `run` for the form's subject and range, and draws its per-day counts.
async fn dry_run(
    dashboard: &Dashboard,
    run: DryRun,
    form: &PreviewForm,
) -> Result<chart::DayChart, String> {
    let from = super::pages::parse_instant(&form.from)?;
    let to = super::pages::parse_instant(&form.to)?;
    let mut args = Map::new();
    args.insert(run.subject.into(), json!(form.subject.trim()));
    args.insert("from".into(), json!(from));
    args.insert("to".into(), json!(to));
    args.insert("limit".into(), json!(1));
    if let (Some(sample), Some(count)) = (
        run.sample,
        Some(form.sample.trim()).filter(|s| !s.is_empty()),
    ) {
        let count: u32 = count.parse().map_err(|_| {
            format!(
                "sample {count:?} is not a number of simulated {}s",
                run.subject
            )
        })?;
        args.insert(sample.into(), json!(count));
    }
    let reply = dashboard.call(run.cmd, Value::Object(args)).await?;
    let counts: Vec<(String, String, u64)> = reply["counts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let text = |field: &str| c[field].as_str().unwrap_or_default().to_owned();
            (text("day"), text("kind"), c["count"].as_u64().unwrap_or(0))
        })
        .collect();
    Ok(chart::day_bars(&counts))
}
