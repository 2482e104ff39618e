//! The Search page: entities by id (or its start), recipient, policy and kind, a page at a
//! time, through the protocol's `show` and `list`.

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Dashboard;
use super::auth::Signed;
use super::pages::{PAGE_LEN, non_empty};

/// The search form's fields; all optional.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct SearchForm {
    #[serde(default)]
    q: String,
    #[serde(default)]
    recipient: String,
    #[serde(default)]
    policy: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    after: String,
}

/// Entities by id prefix, recipient, policy and kind, a page at a time. Recipients are sought
/// by a form posted in the body, so an address never sits in a URL (a proxy's log, history).
pub async fn search(
    State(dashboard): State<Dashboard>,
    Extension(signed): Extension<Signed>,
    axum::Form(form): axum::Form<SearchForm>,
) -> Response {
    let searched = [&form.q, &form.recipient, &form.policy, &form.kind]
        .iter()
        .any(|field| non_empty(field).is_some());
    let (rows, next, error) = if searched {
        match search_rows(&dashboard, &form).await {
            Ok((rows, next)) => (rows, next, None),
            Err(err) => (Vec::new(), None, Some(err)),
        }
    } else {
        (Vec::new(), None, None)
    };
    let content = json!({
        "form": form, "searched": searched, "rows": rows, "next": next, "error": error,
    });
    dashboard.show(&signed, "search", "search.html", content)
}

/// The rows matching `form`, and the cursor of the next page when there may be one.
async fn search_rows(
    dashboard: &Dashboard,
    form: &SearchForm,
) -> Result<(Vec<Value>, Option<String>), String> {
    let prefix = non_empty(&form.q);
    let mut rows = Vec::new();
    let first_page = non_empty(&form.after).is_none();
    if let (Some(id), true) = (prefix, first_page) {
        // `list` continues *after* its cursor: the entity named exactly is looked up alone.
        if let Ok(entity) = dashboard.call("show", json!({ "entity": id })).await
            && matches_filters(&entity, form)
        {
            rows.push(entity);
        }
    }
    let args = json!({
        "kind": non_empty(&form.kind),
        "policy": non_empty(&form.policy),
        "recipient": non_empty(&form.recipient),
        "after": non_empty(&form.after).or(prefix),
        "limit": PAGE_LEN,
    });
    let page = dashboard.call("list", args).await?;
    let listed = page["entities"].as_array().cloned().unwrap_or_default();
    let past_prefix = |row: &Value| {
        prefix.is_some_and(|p| !row["entity"].as_str().unwrap_or_default().starts_with(p))
    };
    let ended = listed.iter().any(past_prefix);
    rows.extend(listed.into_iter().take_while(|row| !past_prefix(row)));
    let next = if ended {
        None
    } else {
        page["next"].as_str().map(str::to_owned)
    };
    Ok((rows, next))
}

/// Whether an entity looked up by id passes the form's other filters.
fn matches_filters(entity: &Value, form: &SearchForm) -> bool {
    let agrees = |field: &str, wanted: &str| {
        non_empty(wanted).is_none_or(|wanted| entity[field].as_str() == Some(wanted))
    };
    let kind_agrees = non_empty(&form.kind).is_none_or(|kind| {
        entity["active"]
            .as_array()
            .is_some_and(|active| active.iter().any(|r| r["kind"].as_str() == Some(kind)))
    });
    agrees("policy", &form.policy) && agrees("recipient", &form.recipient) && kind_agrees
}
