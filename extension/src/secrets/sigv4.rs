//! AWS Signature Version 4 for the one kind of request the extension makes to AWS: a JSON
//! `POST /` with no query string (Secrets Manager's `GetSecretValue`).
//!
//! Hand-written, as bottlecap does, so the extension does not carry the AWS SDK (about 5 MB).
//! The canonical path is always `/` and the query always empty, so URI encoding and path
//! normalisation — the hard parts of SigV4 — are out of scope on purpose; header values are
//! trimmed and inner runs of spaces collapsed, as the specification asks. HMAC-SHA256 is the
//! RFC 2104 construction over `sha2` (a dependency for ten lines would not earn its place).
//! Checked against AWS's published SigV4 test suite below.

use std::fmt::Write as _;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// The signing algorithm's name, first token of the `Authorization` header.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// AWS credentials: what Lambda puts in an extension's environment.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN`: present for the temporary credentials of a Lambda role.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// What a signature is bound to besides the request.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
    /// `YYYYMMDD'T'HHMMSS'Z'`, the `X-Amz-Date` header.
    pub amz_date: &'a str,
}

impl Scope<'_> {
    fn date(&self) -> &str {
        self.amz_date.get(..8).unwrap_or(self.amz_date)
    }

    fn credential_scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date(),
            self.region,
            self.service
        )
    }
}

/// The result of signing: the headers to add, and the intermediate strings (for tests and
/// debugging; none of them holds the secret key).
#[derive(Debug, Clone)]
pub struct Signed {
    pub canonical_request: String,
    pub string_to_sign: String,
    pub signed_headers: String,
    pub signature: String,
    /// The `Authorization` header value.
    pub authorization: String,
}

/// Signs `POST /` with `headers` (which must include `host` and `x-amz-date`; names in any
/// case) and `body`. Every given header is signed.
pub fn sign_post(
    credentials: &Credentials,
    scope: &Scope<'_>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Signed {
    sign("POST", "/", "", credentials, scope, headers, body)
}

/// Signs a request whose `path` and `query` are already in canonical form (URI-encoded,
/// normalised, query parameters sorted).
fn sign(
    method: &str,
    path: &str,
    query: &str,
    credentials: &Credentials,
    scope: &Scope<'_>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Signed {
    let mut canonical: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), canonical_value(v)))
        .collect();
    canonical.sort();
    // Repeated names join their values with commas, in the order given.
    let mut merged: Vec<(String, String)> = Vec::with_capacity(canonical.len());
    for (k, v) in canonical {
        match merged.last_mut() {
            Some((last, values)) if *last == k => {
                values.push(',');
                values.push_str(&v);
            }
            _ => merged.push((k, v)),
        }
    }
    let signed_headers = merged
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let mut canonical_request = format!("{method}\n{path}\n{query}\n");
    for (k, v) in &merged {
        let _ = writeln!(canonical_request, "{k}:{v}");
    }
    let _ = write!(
        canonical_request,
        "\n{signed_headers}\n{}",
        hex(&Sha256::digest(body))
    );

    let credential_scope = scope.credential_scope();
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{credential_scope}\n{}",
        scope.amz_date,
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let key = signing_key(
        &credentials.secret_access_key,
        scope.date(),
        scope.region,
        scope.service,
    );
    let signature = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
    let authorization = format!(
        "{ALGORITHM} Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.access_key_id
    );
    Signed {
        canonical_request,
        string_to_sign,
        signed_headers,
        signature,
        authorization,
    }
}

/// Trims a header value and collapses inner runs of spaces to one.
fn canonical_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `X-Amz-Date` for `at`: `YYYYMMDD'T'HHMMSS'Z'` in UTC.
pub fn amz_date(at: SystemTime) -> String {
    let u = ddlambda_wire::time::UtcTime::from_system(at);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        u.year, u.month, u.day, u.hour, u.minute, u.second
    )
}

#[cfg(test)]
mod tests {
    //! Vectors from AWS's Signature Version 4 test suite (credentials `AKIDEXAMPLE`, region
    //! `us-east-1`, service `service`, 2015-08-30T12:36:00Z), as published in the AWS General
    //! Reference and shipped by the AWS SDKs (aws-c-auth `tests/aws-signing-test-suite/v4`).

    use super::*;

    const SUITE_DATE: &str = "20150830T123600Z";
    const HOST: (&str, &str) = ("Host", "example.amazonaws.com");
    const DATE: (&str, &str) = ("X-Amz-Date", SUITE_DATE);
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const SUITE_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

    fn suite_credentials(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: token.map(str::to_owned),
        }
    }

    fn scope() -> Scope<'static> {
        Scope {
            region: "us-east-1",
            service: "service",
            amz_date: SUITE_DATE,
        }
    }

    fn authorization(signed_headers: &str, signature: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={signed_headers}, Signature={signature}"
        )
    }

    #[test]
    fn get_vanilla() {
        let s = sign(
            "GET",
            "/",
            "",
            &suite_credentials(None),
            &scope(),
            &[HOST, DATE],
            b"",
        );
        assert_eq!(
            s.canonical_request,
            format!(
                "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{EMPTY_SHA256}"
            )
        );
        assert_eq!(
            s.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
        assert_eq!(
            s.authorization,
            authorization(
                "host;x-amz-date",
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            )
        );
    }

    #[test]
    fn signing_key_matches_the_published_derivation() {
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "service",
        );
        assert_eq!(
            hex(&key),
            "938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75"
        );
    }

    #[test]
    fn post_vanilla() {
        let s = sign_post(&suite_credentials(None), &scope(), &[HOST, DATE], b"");
        assert_eq!(
            s.authorization,
            authorization(
                "host;x-amz-date",
                "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
            )
        );
    }

    #[test]
    fn post_x_www_form_urlencoded_signs_the_body_and_content_type() {
        let s = sign_post(
            &suite_credentials(None),
            &scope(),
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                HOST,
                DATE,
            ],
            b"Param1=value1",
        );
        assert!(s.canonical_request.ends_with(
            "\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
        ));
        assert_eq!(
            s.authorization,
            authorization(
                "content-type;host;x-amz-date",
                "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
            )
        );
    }

    #[test]
    fn post_sts_header_before_signs_the_session_token() {
        let creds = suite_credentials(Some(SUITE_TOKEN));
        let token = creds.session_token.as_deref().unwrap_or_default();
        let s = sign_post(
            &creds,
            &scope(),
            &[HOST, DATE, ("X-Amz-Security-Token", token)],
            b"",
        );
        assert_eq!(
            s.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nc237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6"
        );
        assert_eq!(
            s.authorization,
            authorization(
                "host;x-amz-date;x-amz-security-token",
                "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
            )
        );
    }

    #[test]
    fn post_header_key_sort_and_trim() {
        // post-header-key-sort, with the value padded as in get-header-value-trim: names are
        // lowercased and sorted, values trimmed.
        let s = sign_post(
            &suite_credentials(None),
            &scope(),
            &[DATE, ("My-Header1", "  value1  "), HOST],
            b"",
        );
        assert_eq!(s.signed_headers, "host;my-header1;x-amz-date");
        assert_eq!(
            s.signature,
            "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"
        );
    }

    #[test]
    fn get_header_value_trim_collapses_inner_spaces() {
        let s = sign(
            "GET",
            "/",
            "",
            &suite_credentials(None),
            &scope(),
            &[
                HOST,
                ("My-Header1", " value1"),
                ("My-Header2", " \"a   b   c\""),
                DATE,
            ],
            b"",
        );
        assert_eq!(
            s.signature,
            "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"
        );
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 (short key) and test case 6 (key longer than the block).
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn amz_date_formats_utc() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160);
        assert_eq!(amz_date(at), SUITE_DATE);
        // A leap day, and the end of a century leap year.
        let leap = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(951_868_799);
        assert_eq!(amz_date(leap), "20000229T235959Z");
        assert_eq!(amz_date(SystemTime::UNIX_EPOCH), "19700101T000000Z");
    }

    #[test]
    fn credentials_debug_hides_secrets() {
        let text = format!("{:?}", suite_credentials(Some("tok")));
        assert!(!text.contains("wJalr"));
        assert!(!text.contains("tok\""));
        assert!(text.contains("AKIDEXAMPLE"));
    }
}
