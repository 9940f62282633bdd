//! What a secret may hold, and the API key it yields.
//!
//! Accepted (Datadog documents only the first; the JSON forms are what the Secrets Manager
//! console makes by default, so users store them anyway):
//! - the key itself, as plain text (surrounding whitespace and newlines are ignored);
//! - a JSON object with a field named like `api_key` (`api_key`, `apiKey`, `API-KEY`,
//!   `dd_api_key`, `DD_API_KEY`, `datadog_api_key`, ...: case, `_` and `-` are ignored) whose
//!   value is a string;
//! - a JSON object with exactly one member, whose value is a string.
//!
//! An API key is never JSON, so the two readings cannot be confused. Error messages name the
//! JSON field names found, never a value.

/// Field names (lowercased, without `_` and `-`) that hold the key in a JSON secret.
const KEY_FIELDS: &[&str] = &["apikey", "ddapikey", "datadogapikey"];

/// The API key in `secret`, or why there is none.
pub fn api_key_from_secret(secret: &str) -> Result<String, String> {
    let secret = secret.trim();
    if secret.is_empty() {
        return Err("the secret is empty".to_owned());
    }
    let key = if secret.starts_with('{') {
        from_json(secret)?
    } else {
        secret.to_owned()
    };
    // The key goes into an HTTP header; Datadog keys are 32 hex digits.
    if key.is_empty() {
        return Err("the API key in the secret is empty".to_owned());
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "the API key in the secret contains spaces, control or non-ASCII characters".to_owned(),
        );
    }
    Ok(key)
}

fn from_json(secret: &str) -> Result<String, String> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(secret).map_err(|e| {
            format!(
                "the secret starts with '{{' but is not a JSON object (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
    let normalized = |name: &str| {
        name.chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    if let Some((name, value)) = object
        .iter()
        .find(|(name, _)| KEY_FIELDS.contains(&normalized(name).as_str()))
    {
        return value
            .as_str()
            .map(|s| s.trim().to_owned())
            .ok_or_else(|| format!("the secret's JSON field {name:?} is not a string"));
    }
    let mut members = object.iter();
    match (members.next(), members.next()) {
        (Some((_, serde_json::Value::String(s))), None) => Ok(s.trim().to_owned()),
        (Some((name, _)), None) => Err(format!(
            "the secret's only JSON field {name:?} is not a string"
        )),
        (None, _) => Err("the secret is an empty JSON object".to_owned()),
        _ => Err(format!(
            "the secret is a JSON object with several fields and none named api_key (fields: {})",
            object
                .keys()
                .map(|k| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn plain_text_is_the_key() {
        assert_eq!(api_key_from_secret(KEY).unwrap(), KEY);
        assert_eq!(api_key_from_secret(&format!("  {KEY}\n")).unwrap(), KEY);
    }

    #[test]
    fn json_with_a_key_field() {
        for name in [
            "api_key",
            "apiKey",
            "API-KEY",
            "DD_API_KEY",
            "dd_api_key",
            "datadog_api_key",
        ] {
            let s = format!(r#"{{"site":"datadoghq.eu","{name}":"{KEY}"}}"#);
            assert_eq!(api_key_from_secret(&s).unwrap(), KEY, "{name}");
        }
    }

    #[test]
    fn json_with_a_single_string_member() {
        let s = format!(r#"{{"whatever": " {KEY} "}}"#);
        assert_eq!(api_key_from_secret(&s).unwrap(), KEY);
    }

    #[test]
    fn unusable_secrets_say_why_without_values() {
        let cases = [
            ("", "empty"),
            ("   \n", "empty"),
            ("{}", "empty JSON object"),
            ("{not json", "not a JSON object"),
            (r#"{"a":"x","b":"y"}"#, r#"fields: "a", "b""#),
            (r#"{"api_key": 12}"#, "not a string"),
            (r#"{"only": true}"#, "not a string"),
            (r#"{"api_key": ""}"#, "empty"),
            ("two words", "spaces"),
            ("clé", "non-ASCII"),
        ];
        for (secret, expected) in cases {
            let err = api_key_from_secret(secret).unwrap_err();
            assert!(err.contains(expected), "{secret:?}: {err}");
        }
        let err = api_key_from_secret(r#"{"a":"s3cr3t-value","b":"y"}"#).unwrap_err();
        assert!(!err.contains("s3cr3t"), "{err}");
    }
}
