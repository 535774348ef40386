//! OpenPGP keyrings and the signatures they accept, as `gpgv` checks an APT Release: a
//! clear-signed message (`InRelease`) or a detached signature (`Release.gpg`) is accepted when
//! one of its signatures verifies with the primary key of a keyring's key or with one of its
//! subkeys that the primary key bound for signing (with the subkey's back-signature).
//!
//! Keyrings are read as apt reads `trusted.gpg.d`: binary (`.gpg`, keys concatenated) or
//! ASCII-armored (`.asc`). Neither expiry nor revocation is checked: a key counts for as long
//! as it is in the keyring (see SECURITY.md).
//!
//! Behind the SDK's `openpgp` feature; the implementation is rpgp (`pgp`), pure Rust.

use std::fmt;
use std::io::Cursor;

use pgp::composed::{
    CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey, SignedPublicSubKey,
};
use pgp::packet::{self, Signature};
use pgp::types::KeyDetails;

/// The largest keyring read: Debian's whole archive keyring is 56 KB.
pub const MAX_KEYRING_BYTES: u64 = 1024 * 1024;

/// The most signatures of one message tried: Debian signs a Release with two keys; each try may
/// hash the whole text again.
const MAX_SIGNATURES: usize = 16;

/// The keys a keyring holds, as the keys that may sign: each primary key and each subkey bound
/// for signing.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    keys: usize,
    signers: Vec<Signer>,
}

#[derive(Clone, Debug)]
enum Signer {
    Primary(packet::PublicKey),
    Subkey(packet::PublicSubkey),
}

/// Why a signed message is not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not OpenPGP at all, or not the kind expected (the parser's reason).
    Malformed(String),
    /// No signature.
    Unsigned,
    /// No signature is by a key of the keyring: the key ids the signatures name (upper-case
    /// hex).
    UnknownKeys(Vec<String>),
    /// A signature by a key of the keyring (its key id) does not match the text: the text, or
    /// the signature, was altered.
    Altered(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Malformed(why) => write!(f, "not an OpenPGP signature: {why}"),
            Refusal::Unsigned => f.write_str("not signed"),
            Refusal::UnknownKeys(ids) if ids.is_empty() => {
                f.write_str("not signed by a trusted key (the signatures name no key)")
            }
            Refusal::UnknownKeys(ids) => {
                write!(
                    f,
                    "not signed by a trusted key (key ids {})",
                    ids.join(", ")
                )
            }
            Refusal::Altered(id) => write!(
                f,
                "the signature by key {id} does not match the signed text (altered)"
            ),
        }
    }
}

impl Keyring {
    /// The keys of a keyring file, binary or ASCII-armored (one or more blocks). A file over
    /// [`MAX_KEYRING_BYTES`], or one whose packets do not parse as keys, is an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() as u64 > MAX_KEYRING_BYTES {
            return Err(format!(
                "{} bytes, more than the {MAX_KEYRING_BYTES} a keyring is read at",
                bytes.len()
            ));
        }
        let mut keyring = Keyring::default();
        for key in armored_blocks(bytes)? {
            keyring.add_key(key);
        }
        Ok(keyring)
    }

    /// Adds the keys of `other`.
    pub fn extend(&mut self, other: &Keyring) {
        self.keys += other.keys;
        self.signers.extend(other.signers.iter().cloned());
    }

    /// How many keys (primary keys) it holds.
    pub fn keys(&self) -> usize {
        self.keys
    }

    /// How many keys may sign: the primary keys and their signing subkeys.
    pub fn signing_keys(&self) -> usize {
        self.signers.len()
    }

    /// The signed text of a clear-signed message (an `InRelease`), line ends as `\r\n` (what
    /// was hashed), when a signature of it is by a key of this keyring. Nothing may stand
    /// before or after the message.
    pub fn verify_cleartext(&self, message: &[u8]) -> Result<String, Refusal> {
        let text = std::str::from_utf8(message)
            .map_err(|_| Refusal::Malformed("the message is not UTF-8 text".into()))?;
        let (message, _) = CleartextSignedMessage::from_string(text)
            .map_err(|e| Refusal::Malformed(one_line(&e.to_string())))?;
        let signed = message.signed_text();
        self.accept(message.signatures(), signed.as_bytes())?;
        Ok(signed)
    }

    /// Whether `signature` (a detached signature, binary or armored, as `Release.gpg`) signs
    /// `data` with a key of this keyring.
    pub fn verify_detached(&self, data: &[u8], signature: &[u8]) -> Result<(), Refusal> {
        let (signatures, _) = DetachedSignature::from_reader_many(Cursor::new(signature))
            .map_err(|e| Refusal::Malformed(one_line(&e.to_string())))?;
        let signatures: Vec<Signature> = signatures
            .take(MAX_SIGNATURES)
            .map(|s| s.map(|s| s.signature))
            .collect::<Result<_, _>>()
            .map_err(|e| Refusal::Malformed(one_line(&e.to_string())))?;
        self.accept(&signatures, data)
    }

    /// Accepts when one of (the first [`MAX_SIGNATURES`] of) `signatures` verifies over `data`
    /// with a signer; rpgp refuses a key the signature does not name before hashing anything.
    fn accept(&self, signatures: &[Signature], data: &[u8]) -> Result<(), Refusal> {
        let signatures = &signatures[..signatures.len().min(MAX_SIGNATURES)];
        if signatures.is_empty() {
            return Err(Refusal::Unsigned);
        }
        let mut altered = None;
        for signature in signatures {
            for signer in &self.signers {
                if signer.verify(signature, data) {
                    return Ok(());
                }
                if signer.is_named_by(signature) {
                    altered = Some(signer.key_id());
                }
            }
        }
        if let Some(id) = altered {
            return Err(Refusal::Altered(id));
        }
        let mut named: Vec<String> = signatures
            .iter()
            .flat_map(|s| s.issuer_key_id())
            .map(|id| hex::encode_upper(id.as_ref()))
            .collect();
        named.dedup();
        Err(Refusal::UnknownKeys(named))
    }

    /// The primary key, and each subkey whose binding by the primary key (and back-signature)
    /// verifies and allows signing.
    fn add_key(&mut self, key: SignedPublicKey) {
        self.keys += 1;
        let signing = |subkey: &SignedPublicSubKey| {
            subkey.verify_bindings(&key.primary_key).is_ok()
                && subkey.signatures.iter().any(|s| s.key_flags().sign())
        };
        let subkeys: Vec<Signer> = key
            .public_subkeys
            .iter()
            .filter(|subkey| signing(subkey))
            .map(|subkey| Signer::Subkey(subkey.key.clone()))
            .collect();
        self.signers.push(Signer::Primary(key.primary_key));
        self.signers.extend(subkeys);
    }
}

/// The keys of a keyring file: the armored blocks one after another, or the binary packets.
fn armored_blocks(bytes: &[u8]) -> Result<Vec<SignedPublicKey>, String> {
    let mut keys = Vec::new();
    let mut rest = bytes;
    loop {
        let (parsed, _) = SignedPublicKey::from_reader_many(Cursor::new(rest))
            .map_err(|e| one_line(&e.to_string()))?;
        for key in parsed {
            keys.push(key.map_err(|e| one_line(&e.to_string()))?);
        }
        // A further armored block (an .asc of several exported keys) starts after this one's
        // end line; binary data ends here.
        let Some(next) = after_armor_end(rest) else {
            return Ok(keys);
        };
        rest = next;
    }
}

/// What follows the first armor end line of `bytes`, when another armored block starts there.
fn after_armor_end(bytes: &[u8]) -> Option<&[u8]> {
    const END: &[u8] = b"-----END PGP PUBLIC KEY BLOCK-----";
    let end = bytes.windows(END.len()).position(|w| w == END)? + END.len();
    let rest = &bytes[end..];
    let begin = rest
        .windows(b"-----BEGIN PGP".len())
        .position(|w| w == b"-----BEGIN PGP")?;
    Some(&rest[begin..])
}

impl Signer {
    fn verify(&self, signature: &Signature, data: &[u8]) -> bool {
        match self {
            Signer::Primary(key) => signature.verify(key, data).is_ok(),
            Signer::Subkey(key) => signature.verify(key, data).is_ok(),
        }
    }

    fn details(&self) -> &dyn KeyDetails {
        match self {
            Signer::Primary(key) => key,
            Signer::Subkey(key) => key,
        }
    }

    fn key_id(&self) -> String {
        hex::encode_upper(self.details().legacy_key_id().as_ref())
    }

    /// Whether the signature names this key as its issuer (by key id or fingerprint).
    fn is_named_by(&self, signature: &Signature) -> bool {
        let details = self.details();
        let id = details.legacy_key_id();
        let fingerprint = details.fingerprint();
        signature.issuer_key_id().iter().any(|i| **i == id)
            || signature
                .issuer_fingerprint()
                .iter()
                .any(|f| **f == fingerprint)
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use pgp::composed::SubkeyParamsBuilder;
    use pgp::composed::{ArmorOptions, KeyType, SecretKeyParamsBuilder, SignedSecretKey};
    use pgp::crypto::hash::HashAlgorithm;
    use pgp::ser::Serialize;
    use pgp::types::{Password, Timestamp};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// An Ed25519 key with an Ed25519 signing subkey, the same for the same seed: their
    /// creation time (part of their fingerprints) is fixed too.
    pub(crate) fn secret_key(seed: u64) -> SignedSecretKey {
        let created = Timestamp::from_secs(1_700_000_000);
        let subkey = SubkeyParamsBuilder::default()
            .key_type(KeyType::Ed25519)
            .created_at(created)
            .can_sign(true)
            .build()
            .unwrap();
        SecretKeyParamsBuilder::default()
            .key_type(KeyType::Ed25519)
            .created_at(created)
            .can_certify(true)
            .can_sign(true)
            .primary_user_id(format!("Test archive {seed} <archive@example.org>"))
            .subkey(subkey)
            .build()
            .unwrap()
            .generate(StdRng::seed_from_u64(seed))
            .unwrap()
    }

    /// The public key of `key`, as a binary keyring file.
    pub(crate) fn binary_keyring(key: &SignedSecretKey) -> Vec<u8> {
        key.to_public_key().to_bytes().unwrap()
    }

    /// The key id of `key`'s primary key, as refusals name it.
    pub(crate) fn key_id(key: &SignedSecretKey) -> String {
        hex::encode_upper(key.primary_key.legacy_key_id().as_ref())
    }

    fn armored_keyring(key: &SignedSecretKey) -> Vec<u8> {
        key.to_public_key()
            .to_armored_bytes(ArmorOptions::default())
            .unwrap()
    }

    /// `text` clear-signed by the primary key of `key` (or its subkey).
    pub(crate) fn clear_sign(key: &SignedSecretKey, text: &str, by_subkey: bool) -> Vec<u8> {
        let rng = StdRng::seed_from_u64(7);
        let message = if by_subkey {
            CleartextSignedMessage::sign(rng, text, &key.secret_subkeys[0].key, &Password::empty())
        } else {
            CleartextSignedMessage::sign(rng, text, &key.primary_key, &Password::empty())
        };
        message
            .unwrap()
            .to_armored_bytes(ArmorOptions::default())
            .unwrap()
    }

    /// A detached signature of `data` by the primary key of `key`, armored as `Release.gpg`.
    pub(crate) fn detached_sign(key: &SignedSecretKey, data: &[u8]) -> Vec<u8> {
        DetachedSignature::sign_binary_data(
            StdRng::seed_from_u64(8),
            &key.primary_key,
            &Password::empty(),
            HashAlgorithm::Sha512,
            data,
        )
        .unwrap()
        .to_armored_bytes(ArmorOptions::default())
        .unwrap()
    }

    const TEXT: &str = "Origin: Debian\nSuite: stable\nSHA256:\n 0f 10 main/x\n- dashed\n";

    #[test]
    fn a_clear_signed_text_is_accepted_with_the_signers_key_and_returned() {
        let key = secret_key(1);
        for keyring in [binary_keyring(&key), armored_keyring(&key)] {
            let keyring = Keyring::parse(&keyring).unwrap();
            assert_eq!((keyring.keys(), keyring.signing_keys()), (1, 2));
            for by_subkey in [false, true] {
                let signed = keyring
                    .verify_cleartext(&clear_sign(&key, TEXT, by_subkey))
                    .unwrap();
                assert_eq!(signed, TEXT.replace('\n', "\r\n"));
            }
        }
    }

    #[test]
    fn another_key_an_altered_text_or_no_signature_is_refused() {
        let (key, other) = (secret_key(1), secret_key(2));
        let keyring = Keyring::parse(&binary_keyring(&other)).unwrap();
        let err = keyring
            .verify_cleartext(&clear_sign(&key, TEXT, false))
            .unwrap_err();
        let id = key_id(&key);
        assert_eq!(err, Refusal::UnknownKeys(vec![id.clone()]));
        assert_eq!(
            err.to_string(),
            format!("not signed by a trusted key (key ids {id})")
        );

        let keyring = Keyring::parse(&binary_keyring(&key)).unwrap();
        let signed = clear_sign(&key, TEXT, false);
        let altered = String::from_utf8(signed.clone())
            .unwrap()
            .replace("Suite: stable", "Suite: stablf");
        assert_eq!(
            keyring.verify_cleartext(altered.as_bytes()).unwrap_err(),
            Refusal::Altered(id)
        );
        // A text before the message would be read by a parser that skips to the framing.
        let mut prefixed = b"SHA256:\n ab 1 main/binary-amd64/Packages\n".to_vec();
        prefixed.extend(&signed);
        assert!(matches!(
            keyring.verify_cleartext(&prefixed).unwrap_err(),
            Refusal::Malformed(_)
        ));
        for unsigned in [TEXT.as_bytes(), b"\xff\xfe"] {
            assert!(matches!(
                keyring.verify_cleartext(unsigned).unwrap_err(),
                Refusal::Malformed(_)
            ));
        }
        assert_eq!(keyring.accept(&[], TEXT.as_bytes()), Err(Refusal::Unsigned));
    }

    #[test]
    fn a_detached_signature_is_checked_against_the_bytes() {
        let key = secret_key(1);
        let keyring = Keyring::parse(&armored_keyring(&key)).unwrap();
        let signature = detached_sign(&key, TEXT.as_bytes());
        keyring
            .verify_detached(TEXT.as_bytes(), &signature)
            .unwrap();
        let altered = TEXT.replace("stable", "stablf");
        assert!(matches!(
            keyring.verify_detached(altered.as_bytes(), &signature),
            Err(Refusal::Altered(_))
        ));
        let other = Keyring::parse(&binary_keyring(&secret_key(2))).unwrap();
        assert!(matches!(
            other.verify_detached(TEXT.as_bytes(), &signature),
            Err(Refusal::UnknownKeys(_))
        ));
        assert!(matches!(
            keyring.verify_detached(TEXT.as_bytes(), b"not a signature"),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn keyrings_are_concatenated_keys_or_armored_blocks_within_a_bound() {
        let (one, two) = (secret_key(1), secret_key(2));
        let mut binary = binary_keyring(&one);
        binary.extend(binary_keyring(&two));
        let mut armored = armored_keyring(&one);
        armored.extend(armored_keyring(&two));
        for bytes in [binary, armored] {
            let keyring = Keyring::parse(&bytes).unwrap();
            assert_eq!(keyring.keys(), 2);
            keyring
                .verify_cleartext(&clear_sign(&two, TEXT, true))
                .unwrap();
        }
        let mut merged = Keyring::default();
        merged.extend(&Keyring::parse(&binary_keyring(&one)).unwrap());
        merged.extend(&Keyring::parse(&binary_keyring(&two)).unwrap());
        assert_eq!((merged.keys(), merged.signing_keys()), (2, 4));
        merged
            .verify_cleartext(&clear_sign(&one, TEXT, false))
            .unwrap();

        let mut huge = binary_keyring(&one);
        huge.resize(MAX_KEYRING_BYTES as usize + 1, 0);
        let err = Keyring::parse(&huge).unwrap_err();
        assert!(err.contains("more than the 1048576"), "{err}");
        assert!(Keyring::parse(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n").is_err());
    }
}
