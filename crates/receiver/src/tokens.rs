//! Webhook tokens: several may be valid at once (rotation), compared in
//! constant time, never logged.

use subtle::ConstantTimeEq;

/// The accepted tokens.
#[derive(Clone)]
pub struct Tokens(Vec<String>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured, values hidden)", self.0.len())
    }
}

impl Tokens {
    /// Accepts every non-empty token given (trimmed).
    pub fn new(tokens: impl IntoIterator<Item = String>) -> Tokens {
        Tokens(
            tokens
                .into_iter()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect(),
        )
    }

    /// The first accepted token (shown in the start-up banner when it was
    /// generated).
    pub fn first(&self) -> Option<&str> {
        self.0.first().map(String::as_str)
    }

    /// True when some token is accepted by both sets.
    pub fn overlaps(&self, other: &Tokens) -> bool {
        self.0.iter().any(|t| other.matching(t).is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The accepted tokens.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The first token shorter than `min` characters, if any.
    pub fn too_short(&self, min: usize) -> Option<&str> {
        self.iter().find(|t| t.chars().count() < min)
    }

    /// The accepted token equal to `candidate`, if any. Every configured
    /// token is compared, each in constant time.
    pub fn matching(&self, candidate: &str) -> Option<&str> {
        let candidate = candidate.trim().as_bytes();
        let mut found = None;
        for token in &self.0 {
            if bool::from(token.as_bytes().ct_eq(candidate)) {
                found = Some(token.as_str());
            }
        }
        found
    }
}

/// A new random token: 32 bytes from the OS generator, hex.
pub fn generate() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_configured_token_matches() {
        let tokens = Tokens::new(vec!["old".into(), " new ".into(), "".into()]);
        assert_eq!(tokens.matching("old"), Some("old"));
        assert_eq!(tokens.matching("new"), Some("new"));
        assert_eq!(tokens.matching("ne"), None);
        assert_eq!(tokens.matching(""), None);
        assert!(!format!("{tokens:?}").contains("old"));
    }

    #[test]
    fn generated_tokens_differ() {
        let (a, b) = (generate(), generate());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
