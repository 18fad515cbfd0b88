//! Amazon SNS messages as an HTTPS subscriber receives them: the JSON
//! envelope, the string SNS signs, the rules for the URLs a message may
//! point at, and the RSA signature check against the signing certificate.
//! Pure: bytes and strings in, values out; fetching lives in `fetch`.
//!
//! Follows "Verifying the signatures of Amazon SNS messages" in the SNS
//! developer guide: `SignatureVersion` 1 is SHA1withRSA, 2 SHA256withRSA;
//! the certificate URL is HTTPS on an SNS host; the string to sign holds
//! fixed keys, in byte order, each as `Key\nvalue\n`.

use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use url::Url;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

/// The three kinds of message SNS posts to an HTTPS endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

/// One SNS message, as posted (every value is a JSON string).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope {
    #[serde(rename = "Type")]
    pub kind: String,
    pub message_id: String,
    pub topic_arn: String,
    #[serde(default)]
    pub subject: Option<String>,
    pub message: String,
    pub timestamp: String,
    pub signature_version: String,
    pub signature: String,
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
    #[serde(default, rename = "SubscribeURL")]
    pub subscribe_url: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
}

/// Why a message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnsError {
    #[error("not an SNS message: {0}")]
    Malformed(String),
    #[error("{0}")]
    Url(String),
    #[error("the signature does not match the message")]
    Signature,
    #[error("signing certificate: {0}")]
    Certificate(String),
}

impl Envelope {
    /// Reads a posted body.
    pub fn parse(body: &[u8]) -> Result<Envelope, SnsError> {
        serde_json::from_slice(body).map_err(|e| SnsError::Malformed(e.to_string()))
    }

    pub fn kind(&self) -> Result<Kind, SnsError> {
        match self.kind.as_str() {
            "Notification" => Ok(Kind::Notification),
            "SubscriptionConfirmation" => Ok(Kind::SubscriptionConfirmation),
            "UnsubscribeConfirmation" => Ok(Kind::UnsubscribeConfirmation),
            other => Err(SnsError::Malformed(format!("unknown Type {other:?}"))),
        }
    }

    /// The bytes SNS signed: for a notification `Message`, `MessageId`,
    /// `Subject` (only when present), `Timestamp`, `TopicArn`, `Type`; for
    /// the confirmations `Message`, `MessageId`, `SubscribeURL`,
    /// `Timestamp`, `Token`, `TopicArn`, `Type`.
    pub fn string_to_sign(&self) -> Result<String, SnsError> {
        let mut out = String::new();
        let mut add = |key: &str, value: &str| {
            out.push_str(key);
            out.push('\n');
            out.push_str(value);
            out.push('\n');
        };
        let missing = |key: &str| SnsError::Malformed(format!("{key} is missing"));
        match self.kind()? {
            Kind::Notification => {
                add("Message", &self.message);
                add("MessageId", &self.message_id);
                if let Some(subject) = &self.subject {
                    add("Subject", subject);
                }
                add("Timestamp", &self.timestamp);
                add("TopicArn", &self.topic_arn);
                add("Type", &self.kind);
            }
            Kind::SubscriptionConfirmation | Kind::UnsubscribeConfirmation => {
                let subscribe = self
                    .subscribe_url
                    .as_deref()
                    .ok_or_else(|| missing("SubscribeURL"))?;
                let token = self.token.as_deref().ok_or_else(|| missing("Token"))?;
                add("Message", &self.message);
                add("MessageId", &self.message_id);
                add("SubscribeURL", subscribe);
                add("Timestamp", &self.timestamp);
                add("Token", token);
                add("TopicArn", &self.topic_arn);
                add("Type", &self.kind);
            }
        }
        Ok(out)
    }

    /// Checks the signature with the certificate's key.
    pub fn verify(&self, key: &SigningKey) -> Result<(), SnsError> {
        let algorithm: &'static dyn ring::signature::VerificationAlgorithm =
            match self.signature_version.as_str() {
                "1" => &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
                "2" => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                other => {
                    return Err(SnsError::Malformed(format!(
                        "unknown SignatureVersion {other:?}"
                    )))
                }
            };
        let signature = base64::engine::general_purpose::STANDARD
            .decode(self.signature.trim())
            .map_err(|_| SnsError::Signature)?;
        let signed = self.string_to_sign()?;
        ring::signature::UnparsedPublicKey::new(algorithm, &key.rsa_public_key)
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| SnsError::Signature)
    }
}

/// An SNS URL pressroom may fetch: `https://sns.<region>.amazonaws.com/…`
/// on the default port, without credentials; a signing certificate's path
/// also ends in `.pem`.
pub fn sns_url(raw: &str, certificate: bool) -> Result<Url, SnsError> {
    let what = if certificate {
        "SigningCertURL"
    } else {
        "SubscribeURL"
    };
    let refuse = |why: &str| SnsError::Url(format!("{what} {raw:?} refused: {why}"));
    let url = Url::parse(raw).map_err(|_| refuse("not a URL"))?;
    if url.scheme() != "https" {
        return Err(refuse("not https"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.port().is_some() {
        return Err(refuse("credentials or a port in the URL"));
    }
    let Some(url::Host::Domain(host)) = url.host() else {
        return Err(refuse("not an Amazon SNS host"));
    };
    let region = host
        .strip_prefix("sns.")
        .and_then(|h| h.strip_suffix(".amazonaws.com"))
        .unwrap_or_default();
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(refuse(
            "not an Amazon SNS host (sns.<region>.amazonaws.com)",
        ));
    }
    if certificate && !url.path().ends_with(".pem") {
        return Err(refuse("not a .pem file"));
    }
    Ok(url)
}

/// The public key of an SNS signing certificate, with the certificate's
/// validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// PKCS#1 `RSAPublicKey`, as ring reads it.
    rsa_public_key: Vec<u8>,
    /// Seconds since the epoch.
    not_before: u64,
    not_after: u64,
}

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

impl SigningKey {
    /// Reads the first certificate of a PEM file: an RSA key, issued to an
    /// Amazon name (`sns.amazonaws.com`).
    pub fn from_pem(pem: &[u8]) -> Result<SigningKey, SnsError> {
        let bad = |why: String| SnsError::Certificate(why);
        let chain = Certificate::load_pem_chain(pem).map_err(|e| bad(e.to_string()))?;
        let cert = chain
            .into_iter()
            .next()
            .ok_or_else(|| bad("no certificate in the file".into()))?;
        let tbs = &cert.tbs_certificate;
        let names = names(&cert);
        // SNS signs with certificates issued to sns.amazonaws.com.
        if !names.iter().any(|n| n.ends_with(".amazonaws.com")) {
            return Err(bad(format!(
                "issued to {}, not to Amazon SNS",
                if names.is_empty() {
                    "no name".to_owned()
                } else {
                    names.join(", ")
                }
            )));
        }
        let spki = &tbs.subject_public_key_info;
        if spki.algorithm.oid != RSA_ENCRYPTION {
            return Err(bad("not an RSA key".into()));
        }
        let key = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| bad("unreadable public key".into()))?;
        Ok(SigningKey {
            rsa_public_key: key.to_vec(),
            not_before: tbs.validity.not_before.to_unix_duration().as_secs(),
            not_after: tbs.validity.not_after.to_unix_duration().as_secs(),
        })
    }

    /// Whether the certificate is valid at `now` (since the epoch).
    pub fn check_validity(&self, now: Duration) -> Result<(), SnsError> {
        let now = now.as_secs();
        if now < self.not_before {
            return Err(SnsError::Certificate("not valid yet".into()));
        }
        if now > self.not_after {
            return Err(SnsError::Certificate("expired".into()));
        }
        Ok(())
    }
}

/// The DNS names a certificate is issued to: its subject alternative
/// names, else its subject's common name.
fn names(cert: &Certificate) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(Some((_, SubjectAltName(alt)))) = cert.tbs_certificate.get::<SubjectAltName>() {
        for name in alt {
            if let GeneralName::DnsName(dns) = name {
                out.push(dns.to_string().to_ascii_lowercase());
            }
        }
    }
    if out.is_empty() {
        let subject = cert.tbs_certificate.subject.to_string();
        for part in subject.split(',') {
            if let Some(cn) = part.trim().strip_prefix("CN=") {
                out.push(cn.to_ascii_lowercase());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The notification example of the SNS developer guide ("Amazon SNS
    /// message and JSON formats"), with its documented string to sign.
    const DOC_NOTIFICATION: &str = r#"{
  "Type" : "Notification",
  "MessageId" : "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
  "TopicArn" : "arn:aws:sns:us-west-2:123456789012:MyTopic",
  "Subject" : "My First Message",
  "Message" : "Hello world!",
  "Timestamp" : "2012-05-02T00:54:06.655Z",
  "SignatureVersion" : "1",
  "Signature" : "EXAMPLEw6JRNwm1LFQL4ICB0bnXrdB8ClRMTQFGBqwLpGbM78tJ4etTwC5zU7O3tS6tGpey3ejedNdOJ+1fkIp9F2/LmNVKb5aFlYq+9rk9ZiPph5YlLmWsDcyC5T+Sy9/umic5S0UQc2PEtgdpVBahwNOdMW4JPwk0kAJJztnc=",
  "SigningCertURL" : "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
  "UnsubscribeURL" : "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-west-2:123456789012:MyTopic:c9135db0-26c4-47ec-8998-413945fb5a96"
}"#;

    #[test]
    fn notification_string_to_sign_has_the_documented_keys_in_order() {
        let envelope = Envelope::parse(DOC_NOTIFICATION.as_bytes()).unwrap();
        assert_eq!(envelope.kind().unwrap(), Kind::Notification);
        assert_eq!(
            envelope.string_to_sign().unwrap(),
            "Message\nHello world!\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n\
             Subject\nMy First Message\nTimestamp\n2012-05-02T00:54:06.655Z\n\
             TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\nNotification\n"
        );
    }

    #[test]
    fn a_notification_without_subject_leaves_the_key_out() {
        let mut value: serde_json::Value = serde_json::from_str(DOC_NOTIFICATION).unwrap();
        value.as_object_mut().unwrap().remove("Subject");
        let envelope = Envelope::parse(value.to_string().as_bytes()).unwrap();
        let signed = envelope.string_to_sign().unwrap();
        assert!(!signed.contains("Subject"), "{signed}");
        assert!(signed.starts_with("Message\nHello world!\nMessageId\n"));
    }

    #[test]
    fn confirmation_string_to_sign_adds_subscribe_url_and_token() {
        let body = r#"{
  "Type" : "SubscriptionConfirmation",
  "MessageId" : "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
  "Token" : "2336412f37",
  "TopicArn" : "arn:aws:sns:us-west-2:123456789012:MyTopic",
  "Message" : "You have chosen to subscribe to the topic arn:aws:sns:us-west-2:123456789012:MyTopic.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
  "SubscribeURL" : "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37",
  "Timestamp" : "2012-04-26T20:45:04.751Z",
  "SignatureVersion" : "1",
  "Signature" : "EXAMPLE",
  "SigningCertURL" : "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
}"#;
        let envelope = Envelope::parse(body.as_bytes()).unwrap();
        assert_eq!(envelope.kind().unwrap(), Kind::SubscriptionConfirmation);
        assert_eq!(
            envelope.string_to_sign().unwrap(),
            "Message\nYou have chosen to subscribe to the topic arn:aws:sns:us-west-2:123456789012:MyTopic.\n\
             To confirm the subscription, visit the SubscribeURL included in this message.\n\
             MessageId\n165545c9-2a5c-472c-8df2-7ff2be2b3b1b\n\
             SubscribeURL\nhttps://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37\n\
             Timestamp\n2012-04-26T20:45:04.751Z\nToken\n2336412f37\n\
             TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\nSubscriptionConfirmation\n"
        );
        let mut value: serde_json::Value = serde_json::from_str(body).unwrap();
        value.as_object_mut().unwrap().remove("Token");
        let envelope = Envelope::parse(value.to_string().as_bytes()).unwrap();
        assert_eq!(
            envelope.string_to_sign(),
            Err(SnsError::Malformed("Token is missing".into()))
        );
    }

    #[test]
    fn only_https_sns_hosts_are_fetched() {
        for good in [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.eu-west-1.amazonaws.com/x/y.pem",
            "https://SNS.US-WEST-2.AMAZONAWS.COM/a.pem",
        ] {
            assert!(sns_url(good, true).is_ok(), "{good}");
        }
        for bad in [
            "http://sns.us-east-1.amazonaws.com/a.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/a.pem",
            "https://evil.example/sns.us-east-1.amazonaws.com/a.pem",
            "https://s3.us-east-1.amazonaws.com/a.pem",
            "https://sns.amazonaws.com/a.pem",
            "https://sns.a.b.amazonaws.com/a.pem",
            "https://evilamazonaws.com/a.pem",
            "https://sns.us-east-1.amazonaws.com:8443/a.pem",
            "https://user:pw@sns.us-east-1.amazonaws.com/a.pem",
            "https://sns.us-east-1.amazonaws.com/a.pem.txt",
            "https://54.239.0.1/a.pem",
            "not a url",
        ] {
            assert!(
                matches!(sns_url(bad, true), Err(SnsError::Url(_))),
                "{bad} was accepted"
            );
        }
        assert!(sns_url(
            "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=1",
            false
        )
        .is_ok());
    }

    /// The certificate SNS used in us-east-1 in 2022 (published in the
    /// test resources of JetBrains/teamcity-aws-sns-trigger-plugin).
    const REAL_SNS_CERT: &str = include_str!("../../../tests/fixtures/webhooks/sns-2022.pem");

    #[test]
    fn reads_a_real_sns_certificate_and_its_validity() {
        let key = SigningKey::from_pem(REAL_SNS_CERT.as_bytes()).unwrap();
        // notBefore 2022-06-29, notAfter 2023-06-03 23:59:59 UTC.
        assert_eq!(key.not_before, 1_656_460_800);
        assert_eq!(key.not_after, 1_685_836_799);
        assert!(key
            .check_validity(Duration::from_secs(1_662_125_584))
            .is_ok());
        assert_eq!(
            key.check_validity(Duration::from_secs(1_700_000_000)),
            Err(SnsError::Certificate("expired".into()))
        );
        assert_eq!(
            key.check_validity(Duration::from_secs(1_600_000_000)),
            Err(SnsError::Certificate("not valid yet".into()))
        );
        assert!(matches!(
            SigningKey::from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            Err(SnsError::Certificate(_))
        ));
    }

    const TEST_SIGNING_CERT: &str =
        include_str!("../../../tests/fixtures/webhooks/certs/signing.pem");
    const TEST_SIGNING_KEY: &str =
        include_str!("../../../tests/fixtures/webhooks/certs/signing.key");

    /// Signs `envelope` as SNS would, with the test signing key.
    fn sign(envelope: &mut Envelope, version: &str) {
        use rsa::pkcs8::DecodePrivateKey;
        envelope.signature_version = version.to_owned();
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(TEST_SIGNING_KEY).unwrap();
        let signed = envelope.string_to_sign().unwrap();
        let signature = match version {
            "1" => {
                use sha1::Digest;
                key.sign(
                    rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
                    &sha1::Sha1::digest(signed.as_bytes()),
                )
            }
            _ => {
                use sha2::Digest;
                key.sign(
                    rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                    &sha2::Sha256::digest(signed.as_bytes()),
                )
            }
        }
        .unwrap();
        envelope.signature = base64::engine::general_purpose::STANDARD.encode(signature);
    }

    #[test]
    fn signatures_of_both_versions_verify_and_any_change_breaks_them() {
        let key = SigningKey::from_pem(TEST_SIGNING_CERT.as_bytes()).unwrap();
        for version in ["1", "2"] {
            let mut envelope = Envelope::parse(DOC_NOTIFICATION.as_bytes()).unwrap();
            sign(&mut envelope, version);
            assert_eq!(envelope.verify(&key), Ok(()), "version {version}");

            let mut changed = envelope.clone();
            changed.message.push(' ');
            assert_eq!(changed.verify(&key), Err(SnsError::Signature));
            let mut changed = envelope.clone();
            changed.topic_arn = "arn:aws:sns:us-west-2:123456789012:Other".into();
            assert_eq!(changed.verify(&key), Err(SnsError::Signature));
            let mut changed = envelope.clone();
            changed.subject = None;
            assert_eq!(changed.verify(&key), Err(SnsError::Signature));
            let mut changed = envelope.clone();
            changed.signature_version = if version == "1" { "2" } else { "1" }.into();
            assert_eq!(
                changed.verify(&key),
                Err(SnsError::Signature),
                "a version-{version} signature checked as the other version"
            );
            let mut changed = envelope.clone();
            changed.signature_version = "3".into();
            assert!(matches!(changed.verify(&key), Err(SnsError::Malformed(_))));
            let mut changed = envelope.clone();
            changed.signature = "not base64!".into();
            assert_eq!(changed.verify(&key), Err(SnsError::Signature));
        }
        // The documented example's signature is a placeholder.
        let envelope = Envelope::parse(DOC_NOTIFICATION.as_bytes()).unwrap();
        assert_eq!(envelope.verify(&key), Err(SnsError::Signature));
    }

    #[test]
    fn a_certificate_issued_to_someone_else_is_refused() {
        let stranger = include_str!("../../../tests/fixtures/webhooks/certs/stranger.pem");
        assert_eq!(
            SigningKey::from_pem(stranger.as_bytes()),
            Err(SnsError::Certificate(
                "issued to sns.example.org, not to Amazon SNS".into()
            ))
        );
    }
}
