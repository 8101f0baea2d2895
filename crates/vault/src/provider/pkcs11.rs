//! A KEK inside an HSM, through PKCS#11: an AES-256 key created in the token as
//! sensitive and non-extractable, used only to encrypt and decrypt data keys
//! (CKM_AES_GCM). Tested against SoftHSM2.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use super::{check_owner, decode_hex, KeyProvider, WrappedKey};
use crate::datakey::{random, DataKey};
use crate::error::{Error, Result};

/// Where the KEK is.
#[derive(Clone, Debug)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (e.g. `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// The token's label.
    pub token: String,
    /// The KEK's label in the token.
    pub key_label: String,
}

pub struct Pkcs11Kek {
    label: String,
    session: Mutex<Session>,
    key: ObjectHandle,
    // Keeps the module loaded for as long as the session lives.
    _context: Pkcs11,
}

impl std::fmt::Debug for Pkcs11Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pkcs11Kek({})", self.label)
    }
}

fn p11(what: &str) -> impl FnOnce(cryptoki::error::Error) -> Error + '_ {
    move |e| Error::Pkcs11(format!("{what}: {e}"))
}

/// One initialised context per module for the whole process: PKCS#11 allows one
/// `C_Initialize` per process, and finalising it would end every other session.
fn context_for(module: &Path) -> Result<Pkcs11> {
    static CONTEXTS: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());
    let mut contexts = CONTEXTS
        .lock()
        .map_err(|_| Error::Pkcs11("module registry poisoned".into()))?;
    if let Some((_, context)) = contexts.iter().find(|(m, _)| m == module) {
        return Ok(context.clone());
    }
    let context = Pkcs11::new(module).map_err(p11("loading the module"))?;
    context
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(p11("initialising the module"))?;
    contexts.push((module.to_path_buf(), context.clone()));
    Ok(context)
}

fn login(config: &Pkcs11Config, pin: &str) -> Result<(Pkcs11, Session)> {
    let context = context_for(&config.module)?;
    let slots = context
        .get_slots_with_token()
        .map_err(p11("listing slots"))?;
    let slot = slots
        .into_iter()
        .find(|s| {
            context
                .get_token_info(*s)
                .is_ok_and(|t| t.label().trim() == config.token)
        })
        .ok_or_else(|| Error::Pkcs11(format!("no token labelled {:?}", config.token)))?;
    let session = context
        .open_rw_session(slot)
        .map_err(p11("opening a session"))?;
    match session.login(UserType::User, Some(&AuthPin::new(pin.into()))) {
        // Login state is per process and token: another session of ours already did it
        // (the token then does not check the PIN again; the process is the boundary).
        Err(cryptoki::error::Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) | Ok(()) => {}
        Err(e) => return Err(p11("logging in (wrong PIN?)")(e)),
    }
    Ok((context, session))
}

fn find_key(session: &Session, label: &str) -> Result<Option<ObjectHandle>> {
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(p11("finding the key"))?;
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(Error::Pkcs11(format!(
            "{} keys are labelled {label:?}; labels must be unique",
            found.len()
        ))),
    }
}

/// Generates the KEK in the token: AES-256, on the token, sensitive, never extractable,
/// usable only to encrypt and decrypt.
fn generate(session: &Session, label: &str) -> Result<ObjectHandle> {
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Derive(false),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    session
        .generate_key(&Mechanism::AesKeyGen, &template)
        .map_err(p11("generating the key"))
}

impl Pkcs11Kek {
    /// Creates the KEK in the token: AES-256, on the token, sensitive, never extractable,
    /// usable only to encrypt and decrypt. Refuses if the label is taken.
    pub fn create(config: &Pkcs11Config, pin: &str) -> Result<Pkcs11Kek> {
        let (context, session) = login(config, pin)?;
        if find_key(&session, &config.key_label)?.is_some() {
            return Err(Error::Pkcs11(format!(
                "a key labelled {:?} already exists",
                config.key_label
            )));
        }
        let key = generate(&session, &config.key_label)?;
        Ok(Pkcs11Kek {
            label: config.key_label.clone(),
            session: Mutex::new(session),
            key,
            _context: context,
        })
    }

    /// Opens the KEK, creating it first if the token has none with this label; says
    /// whether it was created.
    pub fn open_or_create(config: &Pkcs11Config, pin: &str) -> Result<(Pkcs11Kek, bool)> {
        let (context, session) = login(config, pin)?;
        let (key, created) = match find_key(&session, &config.key_label)? {
            Some(key) => (key, false),
            None => (generate(&session, &config.key_label)?, true),
        };
        let kek = Pkcs11Kek {
            label: config.key_label.clone(),
            session: Mutex::new(session),
            key,
            _context: context,
        };
        Ok((kek, created))
    }

    /// Opens an existing KEK.
    pub fn open(config: &Pkcs11Config, pin: &str) -> Result<Pkcs11Kek> {
        let (context, session) = login(config, pin)?;
        let key = find_key(&session, &config.key_label)?.ok_or_else(|| {
            Error::Pkcs11(format!(
                "no key labelled {:?} in token {:?}",
                config.key_label, config.token
            ))
        })?;
        Ok(Pkcs11Kek {
            label: config.key_label.clone(),
            session: Mutex::new(session),
            key,
            _context: context,
        })
    }

    /// Whether the token lets the key's value out (it must not).
    pub fn is_extractable(&self) -> Result<bool> {
        let session = self.lock()?;
        let attrs = session
            .get_attributes(
                self.key,
                &[AttributeType::Extractable, AttributeType::Sensitive],
            )
            .map_err(p11("reading attributes"))?;
        let mut extractable = true;
        let mut sensitive = false;
        for a in attrs {
            match a {
                Attribute::Extractable(x) => extractable = x,
                Attribute::Sensitive(s) => sensitive = s,
                _ => {}
            }
        }
        let value = session.get_attributes(self.key, &[AttributeType::Value]);
        let value_readable =
            matches!(value, Ok(v) if v.iter().any(|a| matches!(a, Attribute::Value(_))));
        Ok(extractable || !sensitive || value_readable)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Session>> {
        self.session
            .lock()
            .map_err(|_| Error::Pkcs11("session lock poisoned".into()))
    }
}

impl KeyProvider for Pkcs11Kek {
    fn provider(&self) -> &'static str {
        "pkcs11"
    }

    fn kek_id(&self) -> String {
        self.label.clone()
    }

    fn wrap(&self, key: &DataKey, aad: &[u8]) -> Result<WrappedKey> {
        let mut iv: [u8; 12] = random();
        let stored_iv = iv;
        let session = self.lock()?;
        let params = GcmParams::new(&mut iv, aad, 128.into()).map_err(p11("GCM parameters"))?;
        let wrapped = session
            .encrypt(&Mechanism::AesGcm(params), self.key, key.expose())
            .map_err(p11("wrapping"))?;
        Ok(WrappedKey {
            v: 1,
            provider: self.provider().into(),
            kek: self.kek_id(),
            iv: hex::encode(stored_iv),
            wrapped: hex::encode(wrapped),
        })
    }

    fn unwrap_key(&self, wrapped: &WrappedKey, aad: &[u8]) -> Result<DataKey> {
        check_owner(self, wrapped)?;
        let mut iv = decode_hex::<12>(&wrapped.iv).ok_or(Error::Unwrap)?;
        let data = hex::decode(&wrapped.wrapped).map_err(|_| Error::Unwrap)?;
        let session = self.lock()?;
        let params = GcmParams::new(&mut iv, aad, 128.into()).map_err(p11("GCM parameters"))?;
        let plain = Zeroizing::new(
            session
                .decrypt(&Mechanism::AesGcm(params), self.key, &data)
                .map_err(|_| Error::Unwrap)?,
        );
        let bytes: [u8; 32] = plain.as_slice().try_into().map_err(|_| Error::Unwrap)?;
        Ok(DataKey::from_bytes(bytes))
    }
}
