//! What the gateway knows of a connection before it reads a request: the peer's address
//! (for counting failed attempts per source) and, with mutual TLS, the identity its
//! client certificate proves.

use std::net::SocketAddr;

/// The identity a verified client certificate proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The principal the certificate names (see `tls::ClientAuth`).
    pub principal: String,
    /// `sha256:<hex>` of the leaf certificate's DER, for the ledger.
    pub fingerprint: String,
}

/// One accepted connection, shared by the requests it carries.
#[derive(Clone, Debug)]
pub struct Connection {
    pub peer: SocketAddr,
    /// The peer's IP address as text, written once for the records of all its requests.
    pub source: Box<str>,
    pub client: Option<ClientIdentity>,
    /// Whether the connection is TLS (false only with the insecure plain-HTTP setting).
    pub tls: bool,
}

impl Connection {
    pub fn new(peer: SocketAddr, client: Option<ClientIdentity>, tls: bool) -> Connection {
        Connection {
            peer,
            source: peer.ip().to_string().into(),
            client,
            tls,
        }
    }
}
