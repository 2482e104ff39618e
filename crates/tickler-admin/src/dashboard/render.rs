//! The page templates: minijinja, with auto-escaping on for every `.html` template, so a
//! value (an attribute holding `<script>`, a recipient's name) is always shown as text.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::Environment;
use serde::Serialize;

use super::auth::Signed;

/// The templates, compiled once.
pub struct Pages {
    templates: Environment<'static>,
}

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("overview.html", include_str!("templates/overview.html")),
    ("search.html", include_str!("templates/search.html")),
    ("entity.html", include_str!("templates/entity.html")),
    ("due.html", include_str!("templates/due.html")),
    ("failures.html", include_str!("templates/failures.html")),
    ("pauses.html", include_str!("templates/pauses.html")),
    ("preview.html", include_str!("templates/preview.html")),
    ("problem.html", include_str!("templates/problem.html")),
];

/// What every signed-in page knows: who is looking, the token its forms carry, which page.
#[derive(Serialize)]
struct Frame<'a, C: Serialize> {
    clearance: &'static str,
    operator: bool,
    csrf: &'a str,
    page: &'a str,
    now: String,
    #[serde(flatten)]
    content: C,
}

impl Pages {
    pub fn new() -> Pages {
        let mut templates = Environment::new();
        for (name, source) in TEMPLATES {
            templates
                .add_template(name, source)
                .unwrap_or_else(|err| panic!("the dashboard template {name} is broken: {err}"));
        }
        Pages { templates }
    }

    /// `template` with `content`, framed for `signed` on `page` (the navigation's mark).
    pub fn page(
        &self,
        signed: &Signed,
        page: &str,
        now: tickler_core::Timestamp,
        template: &str,
        content: impl Serialize,
    ) -> Response {
        let frame = Frame {
            clearance: signed.clearance.name(),
            operator: signed.clearance == super::Clearance::Operator,
            csrf: &signed.csrf,
            page,
            now: now.to_string(),
            content,
        };
        self.html(StatusCode::OK, template, &frame)
    }

    /// A page saying what went wrong and how to go on, with `status`.
    pub fn problem(&self, signed: &Signed, status: StatusCode, message: &str) -> Response {
        let frame = Frame {
            clearance: signed.clearance.name(),
            operator: signed.clearance == super::Clearance::Operator,
            csrf: &signed.csrf,
            page: "",
            now: String::new(),
            content: serde_json::json!({ "message": message }),
        };
        self.html(status, "problem.html", &frame)
    }

    /// The login form, with `message` (a refused token) if any.
    pub fn login(&self, status: StatusCode, message: Option<&str>) -> Response {
        self.html(status, "login.html", &minijinja::context! { message })
    }

    fn html(&self, status: StatusCode, template: &str, context: &impl Serialize) -> Response {
        let rendered = self
            .templates
            .get_template(template)
            .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(context))));
        match rendered {
            Ok(body) => (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                body,
            )
                .into_response(),
            Err(err) => {
                tracing::error!(template, error = %err, "cannot render a dashboard page");
                let body = format!("cannot render this page: {err}\n");
                (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::Clearance;

    fn signed() -> Signed {
        Signed {
            clearance: Clearance::ReadOnly,
            csrf: "c".into(),
        }
    }

    #[test]
    fn every_template_compiles() {
        let pages = Pages::new();
        for (name, _) in TEMPLATES {
            assert!(pages.templates.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn every_page_has_a_plain_title() {
        let mut pages = Pages::new();
        pages
            .templates
            .set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        for (name, _) in TEMPLATES.iter().filter(|(name, _)| *name != "base.html") {
            let html = pages
                .templates
                .get_template(name)
                .and_then(|t| {
                    t.render(minijinja::context! { chart_width => 720, chart_height => 120 })
                })
                .unwrap_or_else(|err| panic!("{name}: {err}"));
            let title = html
                .split_once("<title>")
                .and_then(|(_, rest)| rest.split_once("</title>"))
                .map(|(title, _)| title)
                .unwrap_or_else(|| panic!("{name} has no title"));
            assert!(title.ends_with(" · tickler"), "{name}: {title}");
            assert!(
                !title.contains('<') && !title.contains('\n'),
                "{name}: {title}"
            );
        }
    }

    #[test]
    fn a_value_holding_markup_is_rendered_as_text() {
        let pages = Pages::new();
        let message = "<script>alert(1)</script>";
        let response = pages.problem(&signed(), StatusCode::BAD_REQUEST, message);
        let body = futures_body(response);
        assert!(!body.contains("<script>"), "{body}");
        assert!(
            body.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{body}"
        );
    }

    fn futures_body(response: Response) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = runtime
            .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}
