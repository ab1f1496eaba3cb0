//! GitHub webhook signatures (`X-Hub-Signature-256`), checked as Prow's hook does (reference
//! `prow-reporters-triggers.md` §3.2).
//!
//! The secret file is either one raw token (Prow's legacy format) or YAML mapping `org/repo`,
//! `org` or `*` to a list of `{value, created_at}` tokens. Only the most specific level that is
//! configured for the event's repository (or organization) is used; any of its tokens may match,
//! so a token can be rotated by listing the old and the new one. Comparison is constant-time.

use std::collections::BTreeMap;

use bosun_reporters::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why the secret file is unusable. Never carries a token.
#[derive(Debug, thiserror::Error)]
pub enum HmacConfigError {
    /// The file is empty.
    #[error("the webhook secret file is empty")]
    Empty,
    /// A level has no token.
    #[error("webhook secret for {0:?} has no token")]
    NoTokens(String),
}

/// Why a delivery's signature is refused (the text after `Invalid X-Hub-Signature-256 - `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The body is not a JSON object.
    #[error("invalid payload")]
    InvalidPayload,
    /// The header is not `sha256=<hex>`.
    #[error("invalid signature")]
    InvalidSignature,
    /// No token is configured for the event's repository or organization.
    #[error("no hmac is configured for {0:?}")]
    NoHmac(String),
    /// No configured token signs this body.
    #[error("misconfigured webhook secret from organization/repo: {0}")]
    Mismatch(String),
}

/// The webhook tokens, by level (`org/repo`, `org`, `*`).
#[derive(Clone)]
pub struct WebhookSecrets {
    levels: BTreeMap<String, Vec<Secret>>,
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecrets")
            .field("levels", &self.levels.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    value: String,
    #[serde(default)]
    #[allow(dead_code)] // part of Prow's format; only `value` matters here
    created_at: Option<serde_yaml::Value>,
}

impl WebhookSecrets {
    /// Parses the secret file's text: the YAML map, else (if it is not one) a single token
    /// used for every repository.
    pub fn parse(text: &str) -> Result<Self, HmacConfigError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(HmacConfigError::Empty);
        }
        if let Ok(map) = serde_yaml::from_str::<BTreeMap<String, Vec<TokenEntry>>>(trimmed) {
            let mut levels = BTreeMap::new();
            for (level, tokens) in map {
                if tokens.is_empty() {
                    return Err(HmacConfigError::NoTokens(level));
                }
                levels.insert(
                    level,
                    tokens.into_iter().map(|t| Secret::new(t.value)).collect(),
                );
            }
            return Ok(Self { levels });
        }
        Ok(Self {
            levels: BTreeMap::from([("*".to_owned(), vec![Secret::new(trimmed)])]),
        })
    }

    /// Checks `signature` (the `X-Hub-Signature-256` header) over `body`.
    pub fn validate(&self, body: &[u8], signature: &str) -> Result<(), SignatureError> {
        #[derive(serde::Deserialize)]
        struct Generic {
            repository: Option<Named>,
            organization: Option<Login>,
        }
        #[derive(serde::Deserialize)]
        struct Named {
            full_name: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Login {
            login: Option<String>,
        }
        let event: Generic =
            serde_json::from_slice(body).map_err(|_| SignatureError::InvalidPayload)?;
        let hex_sig = signature
            .strip_prefix("sha256=")
            .ok_or(SignatureError::InvalidSignature)?;
        let sig = hex::decode(hex_sig).map_err(|_| SignatureError::InvalidSignature)?;
        let org_repo = event
            .repository
            .and_then(|r| r.full_name)
            .filter(|n| !n.is_empty())
            .or_else(|| event.organization.and_then(|o| o.login))
            .unwrap_or_default();
        let org = org_repo.split('/').next().unwrap_or_default();
        let tokens = self
            .levels
            .get(&org_repo)
            .or_else(|| self.levels.get(org))
            .or_else(|| self.levels.get("*"))
            .ok_or_else(|| SignatureError::NoHmac(org_repo.clone()))?;
        for token in tokens {
            if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(token.expose().as_bytes()) {
                mac.update(body);
                // `verify_slice` compares in constant time.
                if mac.verify_slice(&sig).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(SignatureError::Mismatch(org_repo))
    }
}

/// `sha256=<hex>` of `body` under `key`: what GitHub sends (for tests and tools).
pub fn sign(key: &[u8], body: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        // HMAC takes keys of any length; this branch cannot be reached.
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prow_and_github_test_vectors() {
        assert_eq!(
            sign(b"abc", b"{}"),
            "sha256=19092633e5aa9a849dfcc9d2df4e76db2df1fcba7f38915f2c7833bd8a510f2f"
        );
        assert_eq!(
            sign(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn legacy_single_token_signs_every_repository() {
        let s = WebhookSecrets::parse("abc\n").expect("parses");
        assert_eq!(s.validate(b"{}", &sign(b"abc", b"{}")), Ok(()));
        assert_eq!(
            s.validate(b"{}", &sign(b"abd", b"{}")),
            Err(SignatureError::Mismatch(String::new()))
        );
    }

    const LEVELS: &str = r#"
'*':
- value: global
  created_at: 2020-01-01T00:00:00Z
acme:
- value: org-old
  created_at: 2020-01-01T00:00:00Z
- value: org-new
  created_at: 2021-01-01T00:00:00Z
acme/widget:
- value: repo
  created_at: 2020-01-01T00:00:00Z
"#;

    fn body(full_name: &str) -> Vec<u8> {
        format!(r#"{{"repository":{{"full_name":"{full_name}"}}}}"#).into_bytes()
    }

    #[test]
    fn the_most_specific_level_wins_and_rotation_accepts_every_listed_token() {
        let s = WebhookSecrets::parse(LEVELS).expect("parses");
        let widget = body("acme/widget");
        assert_eq!(s.validate(&widget, &sign(b"repo", &widget)), Ok(()));
        // the org token is not accepted for a repo with its own tokens
        assert_eq!(
            s.validate(&widget, &sign(b"org-new", &widget)),
            Err(SignatureError::Mismatch("acme/widget".into()))
        );
        let gadget = body("acme/gadget");
        assert_eq!(s.validate(&gadget, &sign(b"org-old", &gadget)), Ok(()));
        assert_eq!(s.validate(&gadget, &sign(b"org-new", &gadget)), Ok(()));
        assert!(s.validate(&gadget, &sign(b"global", &gadget)).is_err());
        let other = body("other/thing");
        assert_eq!(s.validate(&other, &sign(b"global", &other)), Ok(()));
        // organization-level events (no repository) use the organization's login
        let org_event = br#"{"organization":{"login":"acme"}}"#;
        assert_eq!(s.validate(org_event, &sign(b"org-new", org_event)), Ok(()));
    }

    #[test]
    fn bad_payloads_and_signatures_are_named() {
        let s = WebhookSecrets::parse(LEVELS).expect("parses");
        assert_eq!(
            s.validate(b"not json", &sign(b"global", b"not json")),
            Err(SignatureError::InvalidPayload)
        );
        let b = body("x/y");
        assert_eq!(
            s.validate(&b, "sha1=abcd"),
            Err(SignatureError::InvalidSignature)
        );
        assert_eq!(
            s.validate(&b, "sha256=zz"),
            Err(SignatureError::InvalidSignature)
        );
        let only_org = WebhookSecrets::parse("acme:\n- value: t\n").expect("parses");
        assert_eq!(
            only_org.validate(&b, &sign(b"t", &b)),
            Err(SignatureError::NoHmac("x/y".into()))
        );
    }

    #[test]
    fn tokens_never_show_in_debug_output_or_errors() {
        let s = WebhookSecrets::parse(LEVELS).expect("parses");
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("org-new") && shown.contains("acme/widget"),
            "{shown}"
        );
        assert!(matches!(
            WebhookSecrets::parse("acme: []"),
            Err(HmacConfigError::NoTokens(level)) if level == "acme"
        ));
    }
}
