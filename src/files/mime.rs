//! Content-Type from the file name.

use std::path::Path;

/// The media type for `name` (the name of the identity file, so `a.css.gz` is asked for
/// as `a.css`), with `charset=utf-8` on text.
pub fn content_type(name: &Path) -> String {
    let Some(mime) = mime_guess::from_path(name).first_raw() else {
        return "application/octet-stream".to_string();
    };
    let texty = mime.starts_with("text/")
        || matches!(mime, "application/javascript" | "application/json" | "application/xml" | "image/svg+xml");
    if texty { format!("{mime}; charset=utf-8") } else { mime.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types() {
        assert_eq!(content_type(Path::new("index.html")), "text/html; charset=utf-8");
        assert_eq!(content_type(Path::new("a/style.css")), "text/css; charset=utf-8");
        assert_eq!(content_type(Path::new("logo.png")), "image/png");
        assert_eq!(content_type(Path::new("blob")), "application/octet-stream");
        assert_eq!(content_type(Path::new("x.unknownext")), "application/octet-stream");
    }
}
