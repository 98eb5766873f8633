//! The console's assets, embedded in the binary and served with a long cache header: nothing
//! is fetched at run time, from a CDN or anywhere else.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const HTMX: &[u8] = include_bytes!("../../assets/htmx.min.js");
const CSS: &[u8] = include_bytes!("../../assets/console.css");

/// In every asset's path: bump it when an asset changes, so browsers holding the old one for a
/// year fetch the new one (the templates name `/console/assets/1/...`; a test checks they agree).
pub const ASSET_VERSION: &str = "1";

pub(crate) async fn serve(Path((version, name)): Path<(String, String)>) -> Response {
    if version != ASSET_VERSION {
        return StatusCode::NOT_FOUND.into_response();
    }
    let (body, kind) = match name.as_str() {
        "htmx.min.js" => (HTMX, "text/javascript; charset=utf-8"),
        "console.css" => (CSS, "text/css; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "public, max-age=31536000, immutable")], body)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::ASSET_VERSION;

    #[test]
    fn every_template_names_the_current_asset_version() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/console");
        let mut named = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for (i, _) in text.match_indices("/console/assets/") {
                let rest = &text[i + "/console/assets/".len()..];
                assert!(rest.starts_with(&format!("{ASSET_VERSION}/")), "an asset path of another version: {rest:.40}");
                named += 1;
            }
        }
        assert!(named >= 3, "the templates name the stylesheet and htmx");
    }
}
