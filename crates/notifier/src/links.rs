//! URLs in emails and pages: only web links become links, and every key
//! hookline puts into a URL path is percent-encoded.

/// `url` when it is an http(s) URL (the only kind an email or page links
/// to); `None` for `javascript:`, `data:`, relative and anything else.
pub fn web_link(url: &str) -> Option<&str> {
    let url = url.trim();
    let scheme_ok = ["http://", "https://"].iter().any(|scheme| {
        url.get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
    });
    let clean = !url.chars().any(|c| c.is_control() || c.is_whitespace());
    (scheme_ok && clean && url.len() > "https://".len()).then_some(url)
}

/// `text` percent-encoded as one URL path segment or query value: every
/// byte but the unreserved ones (`A-Z a-z 0-9 - _ . ~`), so `/ ? # % &`,
/// spaces and non-ASCII survive the trip through a link.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte))
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// hookline's page for conversation `key`, under `base`.
pub fn conversation_page(base: &str, key: &str) -> String {
    format!(
        "{}/ui/conversations/{}",
        base.trim_end_matches('/'),
        encode_component(key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_are_links() {
        assert_eq!(web_link(" https://x.io/a.png "), Some("https://x.io/a.png"));
        assert_eq!(web_link("HTTP://x.io/"), Some("HTTP://x.io/"));
        for bad in [
            "javascript:alert(5)",
            "JavaScript:alert(5)",
            "data:text/html,<script>",
            "//evil.example/x",
            "/ui/events",
            "https://",
            "https://x.io/a b",
            "https://x.io/\u{0}",
            "vbscript:x",
        ] {
            assert_eq!(web_link(bad), None, "{bad}");
        }
    }

    #[test]
    fn keys_are_encoded_as_one_segment() {
        assert_eq!(encode_component("a/b?c#d"), "a%2Fb%3Fc%23d");
        assert_eq!(encode_component("100% sure"), "100%25%20sure");
        assert_eq!(encode_component("é&x=1"), "%C3%A9%26x%3D1");
        assert_eq!(encode_component("42bb83f0-_.~"), "42bb83f0-_.~");
        assert_eq!(
            conversation_page("https://h.example/", "a/b"),
            "https://h.example/ui/conversations/a%2Fb"
        );
    }
}
