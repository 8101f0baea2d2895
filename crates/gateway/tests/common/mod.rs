//! What the TLS tests share: a PKI made at test time with rcgen (a CA, the server and
//! client certificates it signs) and a directory of server files.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use gateway::tls::{ClientAuth, PrincipalSource, TlsSettings};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::CertificateDer;

pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub pem: String,
}

pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
    pub key_der: Vec<u8>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    pub fn leaf(&self, cn: Option<&str>, sans: Vec<SanType>, eku: ExtendedKeyUsagePurpose) -> Leaf {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.subject_alt_names = sans;
        params.extended_key_usages = vec![eku];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    pub fn server(&self) -> Leaf {
        self.leaf(
            Some("localhost"),
            vec![SanType::DnsName("localhost".try_into().unwrap())],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    pub fn client(&self, cn: Option<&str>, sans: Vec<SanType>) -> Leaf {
        self.leaf(cn, sans, ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// The server's files in a temporary directory.
pub struct Files {
    pub dir: tempfile::TempDir,
}

impl Files {
    pub fn new(server: &Leaf, client_ca: Option<&Ca>) -> Files {
        let files = Files {
            dir: tempfile::tempdir().unwrap(),
        };
        files.put_pair(server);
        if let Some(ca) = client_ca {
            std::fs::write(files.ca(), &ca.pem).unwrap();
        }
        files
    }
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }
    pub fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("client-ca.pem")
    }
    pub fn put_pair(&self, leaf: &Leaf) {
        std::fs::write(self.cert(), &leaf.cert_pem).unwrap();
        std::fs::write(self.key(), &leaf.key_pem).unwrap();
    }
    pub fn settings(&self) -> TlsSettings {
        TlsSettings::new(self.cert(), self.key())
    }
    pub fn mtls(&self, mode: ClientAuth, from: PrincipalSource) -> TlsSettings {
        let mut s = self.settings();
        s.client_auth = mode;
        s.client_ca = Some(self.ca());
        s.principal_from = from;
        s
    }
}
