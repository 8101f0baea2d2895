//! The principal a verified client certificate names. Certificates are read with
//! RustCrypto's `x509-cert` (already in the tree for signing). The chain has been verified
//! by rustls before any of this runs; this only picks the name.

use rustls::pki_types::CertificateDer;
use x509_cert::der::asn1::Ia5String;
use x509_cert::der::oid::db::rfc4519::CN;
use x509_cert::der::{Decode, Tag, Tagged};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

use super::PrincipalSource;
use crate::conn::ClientIdentity;

/// The identity in a verified chain (leaf first): the principal its leaf names by `source`,
/// and the leaf's fingerprint. An error when the chosen name is missing, appears with
/// different values, or is not a valid principal name.
pub fn client_identity(
    certs: &[CertificateDer<'_>],
    source: PrincipalSource,
) -> Result<ClientIdentity, String> {
    let leaf = certs
        .first()
        .ok_or_else(|| "no client certificate".to_string())?;
    let cert = Certificate::from_der(leaf.as_ref())
        .map_err(|e| format!("the client certificate cannot be read: {e}"))?;
    let names = match source {
        PrincipalSource::CommonName => common_names(&cert)?,
        _ => san_names(&cert, source)?,
    };
    let mut names = names;
    names.sort();
    names.dedup();
    let name = match names.as_slice() {
        [] => {
            return Err(format!(
                "the client certificate has no {} name",
                what(source)
            ))
        }
        [one] => one,
        _ => {
            return Err(format!(
                "the client certificate has {} different {} names; it must have one",
                names.len(),
                what(source)
            ))
        }
    };
    let principal = match source {
        PrincipalSource::SanUri => uri_principal(name)?,
        _ => name.clone(),
    };
    registry::identity::check_name(&principal)
        .map_err(|e| format!("the client certificate's {} name: {e}", what(source)))?;
    Ok(ClientIdentity {
        principal,
        fingerprint: fingerprint(leaf),
    })
}

/// The identity of a TLS session's peer: none when it presented no certificate.
pub fn peer_identity(
    peer: Option<&[CertificateDer<'_>]>,
    source: PrincipalSource,
) -> Result<Option<ClientIdentity>, String> {
    match peer {
        None | Some([]) => Ok(None),
        Some(certs) => client_identity(certs, source).map(Some),
    }
}

fn what(source: PrincipalSource) -> &'static str {
    match source {
        PrincipalSource::CommonName => "subject common name (CN)",
        PrincipalSource::SanDns => "DNS subject alternative",
        PrincipalSource::SanUri => "URI subject alternative",
        PrincipalSource::SanEmail => "email subject alternative",
    }
}

fn common_names(cert: &Certificate) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for rdn in &cert.tbs_certificate.subject.0 {
        for atv in rdn.0.iter().filter(|atv| atv.oid == CN) {
            // Principal names are ASCII: the string types that can carry them.
            match atv.value.tag() {
                Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => {}
                other => return Err(format!("the client certificate's CN is a {other} string")),
            }
            let name = std::str::from_utf8(atv.value.value())
                .map_err(|_| "the client certificate's CN is not UTF-8".to_string())?;
            names.push(name.to_string());
        }
    }
    Ok(names)
}

fn san_names(cert: &Certificate, source: PrincipalSource) -> Result<Vec<String>, String> {
    let san = cert
        .tbs_certificate
        .get::<SubjectAltName>()
        .map_err(|e| format!("the client certificate's subject alternative names: {e}"))?;
    let Some((_, SubjectAltName(names))) = san else {
        return Ok(Vec::new());
    };
    Ok(names
        .iter()
        .filter_map(|n| pick(source, n))
        .map(|s| s.as_str().to_string())
        .collect())
}

fn pick(source: PrincipalSource, name: &GeneralName) -> Option<&Ia5String> {
    match (source, name) {
        (PrincipalSource::SanDns, GeneralName::DnsName(s))
        | (PrincipalSource::SanUri, GeneralName::UniformResourceIdentifier(s))
        | (PrincipalSource::SanEmail, GeneralName::Rfc822Name(s)) => Some(s),
        _ => None,
    }
}

/// The last segment of a URI's path: `spiffe://corp.example/ns/ml/sa/billing` → `billing`.
fn uri_principal(uri: &str) -> Result<String, String> {
    let no_path = || format!("the client certificate's URI {uri:?} has no path naming a principal");
    let (_, rest) = uri.split_once("://").ok_or_else(no_path)?;
    let (_, path) = rest.split_once('/').ok_or_else(no_path)?;
    if path.contains(['?', '#']) {
        return Err(format!(
            "the client certificate's URI {uri:?} has a query or fragment"
        ));
    }
    match path.rsplit('/').next() {
        Some(last) if !last.is_empty() => Ok(last.to_string()),
        _ => Err(no_path()),
    }
}

/// `sha256:<hex>` of the certificate's DER.
fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    format!("sha256:{}", hex::encode(digest.as_ref()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    /// A self-signed certificate with (at most) one CN; an organization of `o` if given.
    fn cert_with(cn: Option<&str>, o: Option<&str>, sans: Vec<SanType>) -> CertificateDer<'static> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        if let Some(o) = o {
            params.distinguished_name.push(DnType::OrganizationName, o);
        }
        params.subject_alt_names = sans;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    fn cert(cns: &[&str], sans: Vec<SanType>) -> CertificateDer<'static> {
        match cns {
            [] => cert_with(None, None, sans),
            [cn] => cert_with(Some(cn), None, sans),
            _ => panic!("rcgen keeps one CN: use two_cns"),
        }
    }

    /// rcgen writes one CN at most: this turns the organization into a second CN by
    /// rewriting its attribute type (2.5.4.10 to 2.5.4.3). The signature no longer holds,
    /// which does not matter here: rustls verified the chain before names are read.
    fn two_cns(a: &str, b: &str) -> CertificateDer<'static> {
        let der = cert_with(Some(a), Some(b), vec![]).as_ref().to_vec();
        let (o, cn) = (
            [0x06, 0x03, 0x55, 0x04, 0x0a],
            [0x06, 0x03, 0x55, 0x04, 0x03],
        );
        let mut out = der.clone();
        let mut hits = 0;
        for i in 0..der.len().saturating_sub(o.len()) {
            if der[i..i + o.len()] == o {
                out[i..i + o.len()].copy_from_slice(&cn);
                hits += 1;
            }
        }
        assert!(hits >= 1);
        CertificateDer::from(out)
    }

    fn dns(s: &str) -> SanType {
        SanType::DnsName(s.try_into().unwrap())
    }
    fn uri(s: &str) -> SanType {
        SanType::URI(s.try_into().unwrap())
    }
    fn email(s: &str) -> SanType {
        SanType::Rfc822Name(s.try_into().unwrap())
    }

    fn principal(der: &CertificateDer<'_>, source: PrincipalSource) -> Result<String, String> {
        client_identity(std::slice::from_ref(der), source).map(|id| id.principal)
    }

    #[test]
    fn common_name() {
        let der = cert(&["billing-svc"], vec![dns("billing.corp.example")]);
        let id = client_identity(std::slice::from_ref(&der), PrincipalSource::CommonName).unwrap();
        assert_eq!(id.principal, "billing-svc");
        let want = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
        assert_eq!(id.fingerprint, format!("sha256:{}", hex::encode(want)));
        assert_eq!(id.fingerprint.len(), 7 + 64);
    }

    #[test]
    fn san_kinds() {
        let der = cert(
            &["cn-name"],
            vec![
                dns("billing.corp.example"),
                uri("spiffe://corp.example/ns/ml/sa/billing"),
                email("alice@corp.example"),
            ],
        );
        assert_eq!(
            principal(&der, PrincipalSource::SanDns).unwrap(),
            "billing.corp.example"
        );
        assert_eq!(principal(&der, PrincipalSource::SanUri).unwrap(), "billing");
        assert_eq!(
            principal(&der, PrincipalSource::SanEmail).unwrap(),
            "alice@corp.example"
        );
        assert_eq!(
            principal(&der, PrincipalSource::CommonName).unwrap(),
            "cn-name"
        );
    }

    #[test]
    fn missing_names() {
        let der = cert(&[], vec![dns("a.example")]);
        let e = principal(&der, PrincipalSource::CommonName).unwrap_err();
        assert!(e.contains("no subject common name"), "{e}");
        for source in [PrincipalSource::SanUri, PrincipalSource::SanEmail] {
            let e = principal(&der, source).unwrap_err();
            assert!(e.contains("has no"), "{e}");
        }
        let bare = cert(&["x"], vec![]);
        assert!(principal(&bare, PrincipalSource::SanDns)
            .unwrap_err()
            .contains("has no DNS"));
    }

    #[test]
    fn ambiguous_names() {
        let e = principal(&two_cns("alice", "bob"), PrincipalSource::CommonName).unwrap_err();
        assert!(e.contains("2 different"), "{e}");
        assert_eq!(
            principal(&two_cns("alice", "alice"), PrincipalSource::CommonName).unwrap(),
            "alice"
        );
        let der = cert(&["alice"], vec![dns("a.example"), dns("b.example")]);
        let e = principal(&der, PrincipalSource::SanDns).unwrap_err();
        assert!(e.contains("2 different"), "{e}");
        // The same name twice is not ambiguous.
        let twice = cert(&[], vec![dns("a.example"), dns("a.example")]);
        assert_eq!(
            principal(&twice, PrincipalSource::SanDns).unwrap(),
            "a.example"
        );
    }

    #[test]
    fn invalid_names() {
        for bad in ["bad name", "-dash", "*.example", &"x".repeat(65)] {
            let der = cert(&[bad], vec![dns(&format!("{}.example", "y"))]);
            let e = principal(&der, PrincipalSource::CommonName).unwrap_err();
            assert!(e.contains("must be 1-64"), "{bad}: {e}");
        }
        let wildcard = cert(&[], vec![dns("*.corp.example")]);
        assert!(principal(&wildcard, PrincipalSource::SanDns).is_err());
        for bad in [
            "spiffe://corp.example",
            "spiffe://corp.example/",
            "spiffe://corp.example/ns/",
            "urn:warden:alice",
            "https://corp.example/a?b=c",
            "https://corp.example/a b",
        ] {
            let der = cert(&[], vec![uri(bad)]);
            assert!(principal(&der, PrincipalSource::SanUri).is_err(), "{bad}");
        }
    }

    #[test]
    fn not_a_certificate() {
        let e = client_identity(&[], PrincipalSource::CommonName).unwrap_err();
        assert_eq!(e, "no client certificate");
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        let e = client_identity(&[garbage], PrincipalSource::CommonName).unwrap_err();
        assert!(e.contains("cannot be read"), "{e}");
        let good = cert(&["alice"], vec![]);
        let mut trailing = good.as_ref().to_vec();
        trailing.push(0);
        let e = client_identity(
            &[CertificateDer::from(trailing)],
            PrincipalSource::CommonName,
        )
        .unwrap_err();
        assert!(e.contains("cannot be read"), "{e}");
    }

    /// What the listener calls after a handshake (`server.rs`).
    #[test]
    fn peer() {
        assert_eq!(peer_identity(None, PrincipalSource::CommonName), Ok(None));
        assert_eq!(
            peer_identity(Some(&[]), PrincipalSource::CommonName),
            Ok(None)
        );
        let der = cert(&["alice"], vec![email("alice@corp.example")]);
        let id = peer_identity(Some(std::slice::from_ref(&der)), PrincipalSource::SanEmail)
            .unwrap()
            .unwrap();
        assert_eq!(id.principal, "alice@corp.example");
        let nameless = cert(&[], vec![]);
        assert!(peer_identity(Some(&[nameless]), PrincipalSource::CommonName).is_err());
    }
}
