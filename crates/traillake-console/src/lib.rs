//! The console's files, bundled at build time (`build.rs`): the page, its script (the console's
//! code with the AWS SDK for JavaScript v3, CodeMirror and Chart.js, minified into one file) and
//! its styles, served by `traillake serve` under `/console`.

/// A file of the console: its bytes and content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// The file's bytes.
    pub bytes: &'static [u8],
    /// Its `Content-Type`.
    pub content_type: &'static str,
}

const INDEX: Asset = Asset {
    bytes: include_bytes!(concat!(env!("OUT_DIR"), "/index.html")),
    content_type: "text/html; charset=utf-8",
};
const SCRIPT: Asset = Asset {
    bytes: include_bytes!(concat!(env!("OUT_DIR"), "/console.js")),
    content_type: "text/javascript; charset=utf-8",
};
const STYLES: Asset = Asset {
    bytes: include_bytes!(concat!(env!("OUT_DIR"), "/style.css")),
    content_type: "text/css; charset=utf-8",
};

/// Returns the file at a path under `/console` (`""` and `index.html` are the page).
pub fn asset(path: &str) -> Option<Asset> {
    match path.trim_start_matches('/') {
        "" | "index.html" => Some(INDEX),
        "console.js" => Some(SCRIPT),
        "style.css" => Some(STYLES),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_page_its_script_and_styles() {
        let page = std::str::from_utf8(asset("").unwrap().bytes).unwrap();
        assert!(page.contains("console.js") && page.contains("style.css"));
        assert_eq!(asset("index.html"), asset("/"));
        assert!(
            asset("console.js").unwrap().bytes.len() > 100_000,
            "the libraries are bundled"
        );
        assert_eq!(asset("style.css").unwrap().content_type, "text/css; charset=utf-8");
        assert_eq!(asset("../Cargo.toml"), None);
    }
}
