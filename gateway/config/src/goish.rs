//! Small re-creations of the Go standard-library checks Prow's validation leans on:
//! `net/url.Parse`, `mime.ParseMediaType`, and the parse step of `text/template` (delimiters
//! only). They accept and refuse what Go does for everything a config reasonably contains.

use serde::{Deserialize, Deserializer};

/// Deserializes `null` as the type's default, as Go's `encoding/json` leaves a field at its
/// zero value on `null`.
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The parts of a URL Prow's checks look at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct GoUrl {
    /// Lower-cased scheme, "" when there is none.
    pub scheme: String,
    /// Host (with port), "" when there is no authority.
    pub host: String,
}

/// `net/url.Parse`: the errors Go reports, with Go's wording.
pub(crate) fn parse_url(raw: &str) -> Result<GoUrl, String> {
    let (without_fragment, fragment) = raw.split_once('#').unwrap_or((raw, ""));
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("invalid control character in URL".to_owned());
    }
    let (scheme, rest) = get_scheme(without_fragment)?;
    let scheme = scheme.to_ascii_lowercase();
    let rest = match rest.split_once('?') {
        Some((before, _query)) => before,
        None => rest,
    };
    let mut url = GoUrl {
        scheme,
        host: String::new(),
    };
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            // Opaque URL such as `mailto:x` or `github.com:org/repo.git`.
            check_escapes(fragment)?;
            return Ok(url);
        }
        let segment = rest.split('/').next().unwrap_or("");
        if segment.contains(':') {
            return Err("first path segment in URL cannot contain colon".to_owned());
        }
    }
    let mut path = rest;
    if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let authority_and_path = &rest[2..];
        let (authority, p) = match authority_and_path.find('/') {
            Some(i) => (&authority_and_path[..i], &authority_and_path[i..]),
            None => (authority_and_path, ""),
        };
        path = p;
        url.host = parse_authority(authority)?;
    }
    check_escapes(path)?;
    check_escapes(fragment)?;
    Ok(url)
}

fn get_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' => {
                if i == 0 {
                    return Ok(("", raw));
                }
            }
            b':' => {
                if i == 0 {
                    return Err("missing protocol scheme".to_owned());
                }
                return Ok((&raw[..i], &raw[i + 1..]));
            }
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

fn parse_authority(authority: &str) -> Result<String, String> {
    let host = match authority.rfind('@') {
        Some(i) => {
            let user = &authority[..i];
            if !user.bytes().all(valid_userinfo_byte) {
                return Err("net/url: invalid userinfo".to_owned());
            }
            &authority[i + 1..]
        }
        None => authority,
    };
    if let Some(inner) = host.strip_prefix('[') {
        let Some(end) = inner.find(']') else {
            return Err("missing ']' in host".to_owned());
        };
        let port = &inner[end + 1..];
        if !valid_optional_port(port) {
            return Err(format!("invalid port {port:?} after host"));
        }
    } else if let Some(i) = host.rfind(':') {
        let port = &host[i..];
        if !valid_optional_port(port) {
            return Err(format!("invalid port {port:?} after host"));
        }
    }
    for c in host.chars() {
        let ok =
            c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:[]<>\"%".contains(c) || !c.is_ascii();
        if !ok {
            return Err(format!(
                "invalid character {:?} in host name",
                c.to_string()
            ));
        }
    }
    check_escapes(host)?;
    Ok(host.to_owned())
}

fn valid_userinfo_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._:~!$&'()*+,;=%@".contains(&b)
}

fn valid_optional_port(port: &str) -> bool {
    match port.strip_prefix(':') {
        None => port.is_empty(),
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
    }
}

fn check_escapes(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok =
                i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit();
            if !ok {
                let end = (i + 3).min(b.len());
                return Err(format!(
                    "invalid URL escape {:?}",
                    String::from_utf8_lossy(&b[i..end])
                ));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

fn is_token_byte(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !b"()<>@,;:\\\"/[]?=".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// `mime.ParseMediaType`: `type[/subtype][; key=value ...]`.
pub(crate) fn parse_media_type(v: &str) -> Result<(), String> {
    let mut parts = v.split(';');
    let base = parts.next().unwrap_or("").trim();
    let (major, minor) = match base.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (base, None),
    };
    if !is_token(major) {
        return Err("mime: no media type".to_owned());
    }
    if let Some(minor) = minor
        && !is_token(minor)
    {
        return Err("mime: expected token after slash".to_owned());
    }
    for param in parts {
        let param = param.trim();
        if param.is_empty() {
            continue;
        }
        let Some((key, value)) = param.split_once('=') else {
            return Err("mime: invalid media parameter".to_owned());
        };
        let value = value.trim();
        let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
        if !is_token(key.trim()) || !(quoted || is_token(value)) {
            return Err("mime: invalid media parameter".to_owned());
        }
    }
    Ok(())
}

/// The delimiter part of `text/template.Parse`: every `{{` must be closed by `}}`.
pub(crate) fn check_go_template(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("unclosed action".to_owned());
        };
        let action = after[..end].trim_matches(|c: char| c == '-' || c.is_whitespace());
        if action.is_empty() {
            return Err("missing value for command".to_owned());
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_like_go() {
        for ok in [
            "https://github.com/org/repo.git",
            "http://fakegitserver.default/repo/repo1",
            "github.com:org/repo.git",
            "ssh://git@github.com:22/org/repo",
            "https://prow.k8s.io/view/",
            "/relative/path",
            "gs://bucket/prefix",
            "",
        ] {
            assert!(parse_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            ":no-scheme",
            "http://[::1/x",
            "http://host:port/",
            "https://exa mple.com/",
            "http://host/%zz",
            "a\nb",
            "1a:b/c",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_url("HTTPS://x/y").map(|u| u.scheme),
            Ok("https".to_owned())
        );
    }

    #[test]
    fn media_types() {
        assert!(parse_media_type("text/plain").is_ok());
        assert!(parse_media_type("text/plain; charset=utf-8").is_ok());
        assert!(parse_media_type("text").is_ok());
        assert!(parse_media_type("text/").is_err());
        assert!(parse_media_type("").is_err());
        assert!(parse_media_type("text/plain; charset").is_err());
    }

    #[test]
    fn templates() {
        assert!(check_go_template("https://x/{{.Spec.Job}}/{{.Status.BuildID}}").is_ok());
        assert!(check_go_template("no actions").is_ok());
        assert!(check_go_template("{{.Spec.Job").is_err());
        assert!(check_go_template("{{ }}").is_err());
    }
}
