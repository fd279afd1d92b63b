//! Where hookline may send mail: the recipient policy every queued email
//! passes, whatever rule asked for it. Rules take recipients from payload
//! data, and anyone holding the webhook token can send payloads, so this is
//! what stops hookline from being turned into a spam relay.

/// The default [`RecipientPolicy::hourly_cap`].
pub const DEFAULT_HOURLY_CAP: u32 = 60;

/// A configured allowed domain that is not a domain (as written).
#[derive(Debug, thiserror::Error)]
#[error("allowed_recipient_domains: {0:?} is not a domain (write e.g. example.com)")]
pub struct NotADomain(pub String);

/// Allowed domains and the per-recipient rate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientPolicy {
    /// Lower-case domains mail may go to (a domain also admits its
    /// subdomains); empty means any domain.
    allowed_domains: Vec<String>,
    /// At most this many emails per recipient per hour, over all rules;
    /// 0 means no cap.
    pub hourly_cap: u32,
}

impl Default for RecipientPolicy {
    fn default() -> RecipientPolicy {
        RecipientPolicy {
            allowed_domains: Vec::new(),
            hourly_cap: DEFAULT_HOURLY_CAP,
        }
    }
}

impl RecipientPolicy {
    /// `domains` as configured (`example.com`, `@example.com` and
    /// surrounding spaces are all accepted); an entry that is not a domain
    /// is an error naming it.
    pub fn new(domains: &[String], hourly_cap: u32) -> Result<RecipientPolicy, NotADomain> {
        let mut allowed_domains = Vec::new();
        for written in domains {
            let domain = written.trim().trim_start_matches('@').to_lowercase();
            if domain.is_empty() {
                continue;
            }
            let valid = domain.contains('.')
                && domain.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label.chars().all(|c| c.is_alphanumeric() || c == '-')
                });
            if !valid {
                return Err(NotADomain(written.clone()));
            }
            if !allowed_domains.contains(&domain) {
                allowed_domains.push(domain);
            }
        }
        Ok(RecipientPolicy {
            allowed_domains,
            hourly_cap,
        })
    }

    /// True when mail may go to any domain.
    pub fn any_domain(&self) -> bool {
        self.allowed_domains.is_empty()
    }

    pub fn domains(&self) -> &[String] {
        &self.allowed_domains
    }

    /// `Err(reason)` when `address` is outside the allowed domains.
    pub fn check_domain(&self, address: &str) -> Result<(), String> {
        if self.any_domain() {
            return Ok(());
        }
        let domain = address
            .rsplit_once('@')
            .map(|(_, d)| d.trim_end_matches('>').to_lowercase())
            .unwrap_or_default();
        let allowed = self
            .allowed_domains
            .iter()
            .any(|d| domain == *d || domain.ends_with(&format!(".{d}")));
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "recipient {address} is outside allowed_recipient_domains ({})",
                self.allowed_domains.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_admit_themselves_and_their_subdomains_only() {
        let policy =
            RecipientPolicy::new(&[" Example.com ".into(), "@team.example.org".into()], 60)
                .unwrap();
        assert!(policy.check_domain("a@example.com").is_ok());
        assert!(policy.check_domain("a@EXAMPLE.COM").is_ok());
        assert!(policy.check_domain("a@eu.example.com").is_ok());
        assert!(policy.check_domain("a@team.example.org").is_ok());
        let refused = policy.check_domain("a@badexample.com").unwrap_err();
        assert!(
            refused.contains("outside allowed_recipient_domains"),
            "{refused}"
        );
        assert!(policy.check_domain("a@example.org").is_err());
        assert!(policy.check_domain("a@example.com.evil.net").is_err());
        assert!(policy.check_domain("no-at-sign").is_err());
    }

    #[test]
    fn no_domains_means_any_and_bad_entries_are_named() {
        let any = RecipientPolicy::new(&[], 60).unwrap();
        assert!(any.any_domain());
        assert!(any.check_domain("x@anything.example").is_ok());
        let error = RecipientPolicy::new(&["not a domain".into()], 60).unwrap_err();
        assert!(error.to_string().contains("\"not a domain\""), "{error}");
        assert!(RecipientPolicy::new(&["localhost".into()], 60).is_err());
    }
}
