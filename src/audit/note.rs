//! Signs and verifies C2SP signed notes (Ed25519) and reads and writes tlog checkpoint bodies.
//!
//! The formats are those of c2sp.org/signed-note and c2sp.org/tlog-checkpoint, byte-compatible
//! with Go's `golang.org/x/mod/sumdb/note` (keys, signatures and notes made by either side are
//! accepted by the other), so audit checkpoints can be checked with the standard Go tooling and
//! witnessed by existing transparency-log infrastructure.
//!
//! - key name: non-empty UTF-8 without `+` and without (Unicode) whitespace.
//! - key hash: the first 4 bytes, big-endian, of SHA-256(name || "\n" || 0x01 || public key).
//! - verifier key: `<name>+<hash, 8 hex digits>+<base64(0x01 || 32-byte public key)>`.
//! - signer key: `PRIVATE+KEY+<name>+<hash>+<base64(0x01 || 32-byte seed)>`.
//! - signed note: the text (ending in "\n"), a blank line, then one line per signature:
//!   `— <name> <base64(key hash || 64-byte Ed25519 signature over the text)>`.

use std::fmt;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

/// The signature type byte c2sp.org/signed-note assigns to Ed25519; the only one supported.
const ALG_ED25519: u8 = 0x01;
/// Every signature line starts with an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// Go refuses notes with more signatures than this (so parsing cannot be made to take forever);
/// the spec requires accepting at least 16.
const MAX_SIGNATURES: usize = 100;
const SIGNER_PREFIX: &str = "PRIVATE+KEY+";
const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    #[error(
        "invalid key name {0:?}: a name must be non-empty and contain no '+', whitespace or control characters"
    )]
    InvalidName(String),
    #[error("malformed verifier key: {0}")]
    MalformedVerifierKey(&'static str),
    // The reason is always a fixed text: a signer key is secret and must not end up in logs.
    #[error("malformed signer key: {0}")]
    MalformedSignerKey(&'static str),
    #[error("unsupported key algorithm {0:#04x}: only Ed25519 (0x01) is supported")]
    UnknownAlgorithm(u8),
    #[error("the key hash {stated:08x} does not match the key, whose hash is {actual:08x}")]
    KeyHashMismatch { stated: u32, actual: u32 },
    #[error("cannot sign the text: {0}")]
    InvalidText(&'static str),
    #[error("malformed signed note: {0}")]
    MalformedNote(String),
    #[error("the signature by {name}+{hash:08x} does not verify: the note was changed or forged")]
    BadSignature { name: String, hash: u32 },
    #[error("the note carries no signature by {name}+{hash:08x}")]
    NotSigned { name: String, hash: u32 },
    #[error("invalid checkpoint: {0}")]
    InvalidCheckpoint(String),
    #[error("Ed25519 {0} failed")]
    Crypto(&'static str),
}

/// A parsed signer (private) key. It can only be built from a valid key text, so its name is
/// valid and its key hash matches its public key. Clone shares nothing mutable, so the audit
/// writer can hold its own copy.
#[derive(Clone)]
pub struct SigningKey {
    pair: Ed25519KeyPair,
    verifier: VerifierKey,
}

impl SigningKey {
    /// Parses `PRIVATE+KEY+<name>+<hash>+<base64 key>`; surrounding whitespace is ignored (key
    /// files usually end in a newline).
    pub fn parse(text: &str) -> Result<SigningKey, NoteError> {
        let bad = NoteError::MalformedSignerKey;
        let text = text.trim();
        let rest = text
            .strip_prefix(SIGNER_PREFIX)
            .ok_or(bad("expected PRIVATE+KEY+<name>+<hash>+<key>"))?;
        let (name, hash_hex, key64) =
            split_key(rest).ok_or(bad("expected PRIVATE+KEY+<name>+<hash>+<key>"))?;
        check_name(name)?;
        let stated = parse_key_hash(hash_hex).ok_or(bad("the key hash must be 8 hex digits"))?;
        let key = BASE64
            .decode(key64)
            .map_err(|_| bad("the key is not valid base64"))?;
        let (&alg, seed) = key.split_first().ok_or(bad("the key is empty"))?;
        if alg != ALG_ED25519 {
            return Err(NoteError::UnknownAlgorithm(alg));
        }
        if seed.len() != KEY_LEN {
            return Err(bad("an Ed25519 seed is 32 bytes"));
        }
        let pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| bad("the Ed25519 seed was rejected"))?;
        // The stated hash is of the public key, so it can only be checked once that is derived.
        let verifier = VerifierKey::from_public(name, &pair)?;
        if verifier.hash != stated {
            return Err(NoteError::KeyHashMismatch {
                stated,
                actual: verifier.hash,
            });
        }
        Ok(SigningKey { pair, verifier })
    }

    pub fn name(&self) -> &str {
        &self.verifier.name
    }

    /// The public half, to hand to whoever verifies.
    pub fn verifier(&self) -> VerifierKey {
        self.verifier.clone()
    }

    /// Signs `text` and returns the whole signed note (the text, a blank line, the signature
    /// line). The text must be what Go's `note.Open` accepts back: non-empty, ending in a
    /// newline, with no control characters other than newline.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        check_text(text)?;
        let signature = self
            .pair
            .try_sign(text.as_bytes())
            .map_err(|_| NoteError::Crypto("signing"))?;
        let mut blob = Vec::with_capacity(4 + signature.as_ref().len());
        blob.extend_from_slice(&self.verifier.hash.to_be_bytes());
        blob.extend_from_slice(signature.as_ref());
        let line = format!(
            "{SIGNATURE_PREFIX}{} {}\n",
            self.verifier.name,
            BASE64.encode(&blob)
        );
        let mut note = String::with_capacity(text.len() + 1 + line.len());
        note.push_str(text);
        note.push('\n');
        note.push_str(&line);
        Ok(note)
    }
}

impl fmt::Debug for SigningKey {
    // Only the public half: a Debug print of a config must never leak the seed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("verifier", &self.verifier.to_text())
            .finish_non_exhaustive()
    }
}

/// A parsed verifier (public) key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    hash: u32,
    public: [u8; KEY_LEN],
}

impl VerifierKey {
    /// Parses `<name>+<hash>+<base64 key>`; surrounding whitespace is ignored. Like Go, the hash
    /// may be written in upper or lower case.
    pub fn parse(text: &str) -> Result<VerifierKey, NoteError> {
        let bad = NoteError::MalformedVerifierKey;
        let (name, hash_hex, key64) =
            split_key(text.trim()).ok_or(bad("expected <name>+<hash>+<key>"))?;
        check_name(name)?;
        let stated = parse_key_hash(hash_hex).ok_or(bad("the key hash must be 8 hex digits"))?;
        let key = BASE64
            .decode(key64)
            .map_err(|_| bad("the key is not valid base64"))?;
        let (&alg, public) = key.split_first().ok_or(bad("the key is empty"))?;
        // Go checks the hash over the encoded key before looking at the algorithm; the same
        // order gives the same error for the same bad key.
        let actual = key_hash(name, &key);
        if stated != actual {
            return Err(NoteError::KeyHashMismatch { stated, actual });
        }
        if alg != ALG_ED25519 {
            return Err(NoteError::UnknownAlgorithm(alg));
        }
        let public = public
            .try_into()
            .map_err(|_| bad("an Ed25519 public key is 32 bytes"))?;
        Ok(VerifierKey {
            name: name.to_owned(),
            hash: stated,
            public,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key text, `<name>+<hash>+<base64 key>`, with the hash in lower case.
    pub fn to_text(&self) -> String {
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.hash,
            BASE64.encode(self.encoded())
        )
    }

    fn from_public(name: &str, pair: &Ed25519KeyPair) -> Result<VerifierKey, NoteError> {
        let public: [u8; KEY_LEN] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| NoteError::Crypto("public key derivation"))?;
        let mut key = VerifierKey {
            name: name.to_owned(),
            hash: 0,
            public,
        };
        key.hash = key_hash(name, &key.encoded());
        Ok(key)
    }

    /// The key as it is hashed and printed: algorithm byte, then the public key.
    fn encoded(&self) -> [u8; 1 + KEY_LEN] {
        let mut out = [ALG_ED25519; 1 + KEY_LEN];
        out[1..].copy_from_slice(&self.public);
        out
    }
}

/// Generates a new key pair; returns (signer key text, verifier key text).
pub fn generate(name: &str) -> Result<(String, String), NoteError> {
    check_name(name)?;
    let mut seed = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| NoteError::Crypto("random seed generation"))?;
    let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
        .map_err(|_| NoteError::Crypto("key derivation"))?;
    let verifier = VerifierKey::from_public(name, &pair)?;
    let mut private = [ALG_ED25519; 1 + KEY_LEN];
    private[1..].copy_from_slice(&seed);
    let signer = format!(
        "{SIGNER_PREFIX}{}+{:08x}+{}",
        name,
        verifier.hash,
        BASE64.encode(private)
    );
    Ok((signer, verifier.to_text()))
}

/// Verifies a signed note: returns the text (without signatures) if at least one signature
/// line is by `key` (matching name AND key hash) and verifies. Signature lines by other keys are
/// ignored (as Go does); a line by `key`'s name+hash that does not verify is an error; a
/// malformed note is an error.
///
/// Unlike Go, which checks only the first of several lines by the same key, every line by `key`
/// must verify: a note carrying a forged line next to a good one is refused.
pub fn open<'a>(note: &'a str, key: &VerifierKey) -> Result<&'a str, NoteError> {
    let malformed = NoteError::MalformedNote;
    if let Some(c) = note.chars().find(|&c| is_forbidden_control(c)) {
        return Err(malformed(format!(
            "it contains the control character {c:?}"
        )));
    }
    // The text may itself contain blank lines; the signatures start after the last one.
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| malformed("no blank line separates the text from the signatures".into()))?;
    let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
    let Some(signatures) = signatures.strip_suffix('\n') else {
        return Err(malformed(if signatures.is_empty() {
            "no signature lines follow the blank line".into()
        } else {
            "the last signature line does not end with a newline".into()
        }));
    };

    let public = UnparsedPublicKey::new(&ED25519, &key.public);
    let mut verified = false;
    for (index, line) in signatures.split('\n').enumerate() {
        let number = index + 1;
        if number > MAX_SIGNATURES {
            return Err(malformed(format!(
                "more than {MAX_SIGNATURES} signature lines"
            )));
        }
        let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(|| {
            malformed(format!(
                "signature line {number} does not start with an em dash and a space"
            ))
        })?;
        let (name, sig64) = rest.split_once(' ').unwrap_or((rest, ""));
        if !is_key_name(name) {
            return Err(malformed(format!(
                "signature line {number} has an invalid key name {name:?}"
            )));
        }
        let blob = BASE64
            .decode(sig64)
            .ok()
            .filter(|blob| blob.len() > 4)
            .ok_or_else(|| {
                malformed(format!(
                    "signature line {number} does not hold a base64 key hash and signature"
                ))
            })?;
        let (hash, signature) = blob.split_at(4);
        let hash = u32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]);
        // A key is its name and hash together; a line sharing only one of them is another key's.
        if name != key.name || hash != key.hash {
            continue;
        }
        public
            .verify(text.as_bytes(), signature)
            .map_err(|_| NoteError::BadSignature {
                name: key.name.clone(),
                hash: key.hash,
            })?;
        verified = true;
    }
    if !verified {
        return Err(NoteError::NotSigned {
            name: key.name.clone(),
            hash: key.hash,
        });
    }
    Ok(text)
}

/// A C2SP tlog-checkpoint body: origin line, tree size (decimal), base64 hash line, then
/// optional extension lines (kept, so a checkpoint prints back to the text that was signed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub hash: [u8; 32],
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text: `origin\nsize\nbase64(hash)\n`, then each extension line. The fields are
    /// written as they are, unchecked: one that is empty or holds a newline yields a text that
    /// `parse` refuses, so the writer should build checkpoints only from values it controls.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.hash)
        );
        for extension in &self.extensions {
            text.push_str(extension);
            text.push('\n');
        }
        text
    }

    /// Parses a checkpoint body strictly, so that one checkpoint has exactly one text: the size
    /// is decimal without leading zeros (except "0"), the hash is canonical base64 of 32 bytes,
    /// no line is empty and the text ends with a newline.
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let bad = NoteError::InvalidCheckpoint;
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("the text does not end with a newline".into()))?;
        if let Some(c) = body.chars().find(|&c| is_forbidden_control(c)) {
            return Err(bad(format!("it contains the control character {c:?}")));
        }
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(bad("the origin line is empty".into()));
        }
        let size = lines
            .next()
            .ok_or_else(|| bad("the tree size line is missing".into()))?;
        let size = parse_size(size).ok_or_else(|| {
            bad(format!(
                "the tree size {size:?} is not a decimal number without leading zeros that fits in 64 bits"
            ))
        })?;
        let hash = lines
            .next()
            .ok_or_else(|| bad("the root hash line is missing".into()))?;
        let hash = BASE64
            .decode(hash)
            .map_err(|e| bad(format!("the root hash is not valid base64: {e}")))?;
        let hash = <[u8; 32]>::try_from(hash)
            .map_err(|hash| bad(format!("the root hash is {} bytes, not 32", hash.len())))?;
        let extensions = lines
            .map(|line| {
                if line.is_empty() {
                    Err(bad("an extension line is empty".into()))
                } else {
                    Ok(line.to_owned())
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            hash,
            extensions,
        })
    }
}

/// Whether `name` may name a key (and so a log): Go's rule (`isValidName`: non-empty, no `+`,
/// no Unicode whitespace), plus no ASCII control characters, because a name holding one could
/// never appear in a note that Go's `Open` accepts.
pub fn is_key_name(name: &str) -> bool {
    // Rust's `char::is_whitespace` is the Unicode White_Space property, the same set as Go's
    // `unicode.IsSpace` (NBSP, U+0085, U+2028, U+3000, ... included).
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c == '+' || c.is_whitespace() || c < ' ')
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if is_key_name(name) {
        Ok(())
    } else {
        Err(NoteError::InvalidName(name.to_owned()))
    }
}

/// Notes may hold no ASCII control character other than newline (Go's `Open` rejects them).
fn is_forbidden_control(c: char) -> bool {
    c < ' ' && c != '\n'
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() {
        return Err(NoteError::InvalidText("the text is empty"));
    }
    if !text.ends_with('\n') {
        return Err(NoteError::InvalidText(
            "the text does not end with a newline",
        ));
    }
    if text.chars().any(is_forbidden_control) {
        return Err(NoteError::InvalidText(
            "the text contains a control character other than newline",
        ));
    }
    Ok(())
}

/// Splits `<name>+<hash>+<key>` at its first two pluses (the base64 key may contain more).
fn split_key(text: &str) -> Option<(&str, &str, &str)> {
    let (name, rest) = text.split_once('+')?;
    let (hash, key) = rest.split_once('+')?;
    Some((name, hash, key))
}

/// Exactly 8 hex digits, as Go requires (`len == 8` and `ParseUint(_, 16, 32)`, either case).
fn parse_key_hash(hex: &str) -> Option<u32> {
    // The digit check also keeps out the leading '+' that `from_str_radix` would accept.
    if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// The key hash over the encoded key (algorithm byte included).
fn key_hash(name: &str, encoded_key: &[u8]) -> u32 {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update(encoded_key)
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Decimal digits only, no leading zero unless the size is "0", within u64.
fn parse_size(text: &str) -> Option<u64> {
    // The digit check keeps out the '+' that `u64::from_str` would accept.
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test vectors from Go's golang.org/x/mod/sumdb/note (note_test.go and the package doc).
    const PETER_SIGNER: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER_VERIFIER: &str =
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const ENOCH_VERIFIER: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                        then you don't know what your problem is.\n";
    const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    // The Go checksum database's key (cmd/go/internal/modfetch/key.go) and a tree head it
    // signed: a checkpoint body signed by Go's production note signer.
    const SUMDB_VERIFIER: &str =
        "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
    const SUMDB_NOTE: &str = "go.sum database tree\n65209736\n\
        5+uGFjx6xBZG8ip1+wi77v+grwbhhukIrxEUS8PXvRo=\n\n\
        — sum.golang.org Az3grnbssgK7ubgFX36gVETtNv0U23qxyAhAMai2QUfeGa3nB/akvkMdlUErfcZz7l/R3cVtYspg3dxXABkGZZKdsQ8=\n";

    fn peter() -> VerifierKey {
        VerifierKey::parse(PETER_VERIFIER).unwrap()
    }

    fn go_note() -> String {
        format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}")
    }

    /// Re-encodes Peter's signature line with its decoded blob changed by `change`.
    fn peter_sig_with(change: impl FnOnce(&mut Vec<u8>)) -> String {
        let b64 = PETER_SIG
            .trim_end()
            .strip_prefix("— PeterNeumann ")
            .unwrap();
        let mut blob = BASE64.decode(b64).unwrap();
        change(&mut blob);
        format!("— PeterNeumann {}\n", BASE64.encode(blob))
    }

    /// A verifier key text for any name, with a correct hash (to test the name checks alone).
    fn verifier_text(name: &str, encoded_key: &[u8]) -> String {
        format!(
            "{name}+{:08x}+{}",
            key_hash(name, encoded_key),
            BASE64.encode(encoded_key)
        )
    }

    #[test]
    fn go_keys_parse_and_print_back_unchanged() {
        let peter = peter();
        assert_eq!(peter.name(), "PeterNeumann");
        assert_eq!(peter.to_text(), PETER_VERIFIER);
        let enoch = VerifierKey::parse(ENOCH_VERIFIER).unwrap();
        assert_eq!(enoch.name(), "EnochRoot");
        assert_eq!(enoch.to_text(), ENOCH_VERIFIER);

        let signer = SigningKey::parse(PETER_SIGNER).unwrap();
        assert_eq!(signer.name(), "PeterNeumann");
        assert_eq!(signer.verifier(), peter);
        // Key files end in a newline.
        let from_file = SigningKey::parse(&format!("  {PETER_SIGNER}\n")).unwrap();
        assert_eq!(from_file.verifier(), peter);
        assert_eq!(
            VerifierKey::parse(&format!("{PETER_VERIFIER}\n")).unwrap(),
            peter
        );
    }

    #[test]
    fn signing_go_text_with_go_key_gives_go_note_byte_for_byte() {
        let signer = SigningKey::parse(PETER_SIGNER).unwrap();
        assert_eq!(signer.sign(TEXT).unwrap(), format!("{TEXT}\n{PETER_SIG}"));
    }

    #[test]
    fn go_signed_note_opens_with_each_of_its_keys() {
        let note = go_note();
        assert_eq!(open(&note, &peter()).unwrap(), TEXT);
        let enoch = VerifierKey::parse(ENOCH_VERIFIER).unwrap();
        assert_eq!(open(&note, &enoch).unwrap(), TEXT);
        // The other key's line is ignored whichever comes first.
        assert_eq!(
            open(&format!("{TEXT}\n{ENOCH_SIG}{PETER_SIG}"), &peter()).unwrap(),
            TEXT
        );
    }

    #[test]
    fn a_sum_golang_org_tree_head_opens_and_parses_as_a_checkpoint() {
        let key = VerifierKey::parse(SUMDB_VERIFIER).unwrap();
        let text = open(SUMDB_NOTE, &key).unwrap();
        let checkpoint = Checkpoint::parse(text).unwrap();
        assert_eq!(checkpoint.origin, "go.sum database tree");
        assert_eq!(checkpoint.size, 65209736);
        assert!(checkpoint.extensions.is_empty());
        assert_eq!(checkpoint.to_text(), text);
        let changed = SUMDB_NOTE.replace("65209736", "65209737");
        assert!(matches!(
            open(&changed, &key),
            Err(NoteError::BadSignature { .. })
        ));
    }

    #[test]
    fn every_mangling_of_go_keys_is_refused_as_go_does() {
        // Go's TestNewVerifier and TestNewSigner: every proper substring and every single-byte
        // increment must fail.
        for key in [PETER_VERIFIER, PETER_SIGNER] {
            let parse = |text: &str| match key {
                PETER_VERIFIER => VerifierKey::parse(text).is_ok(),
                _ => SigningKey::parse(text).is_ok(),
            };
            let bytes = key.as_bytes();
            for i in 0..=bytes.len() {
                for j in i + 1..=bytes.len() {
                    if i != 0 || j != bytes.len() {
                        let part = &key[i..j];
                        assert!(!parse(part), "{part:?} was accepted");
                    }
                }
            }
            for i in 0..bytes.len() {
                let mut changed = bytes.to_vec();
                changed[i] += 1;
                let changed = String::from_utf8(changed).unwrap();
                assert!(!parse(&changed), "{changed:?} was accepted");
            }
        }
    }

    #[test]
    fn wrong_algorithm_byte_and_wrong_key_length_are_refused() {
        // Go's vectors: an unknown algorithm and a too-long key, each with an adjusted hash.
        assert!(matches!(
            VerifierKey::parse(
                "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            ),
            Err(NoteError::UnknownAlgorithm(0x65))
        ));
        assert!(matches!(
            VerifierKey::parse(
                "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
            ),
            Err(NoteError::MalformedVerifierKey(_))
        ));
        let mut seed = BASE64
            .decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
            .unwrap();
        seed[0] = 0x02;
        let signer = format!("PRIVATE+KEY+PeterNeumann+c74f20a3+{}", BASE64.encode(&seed));
        assert!(matches!(
            SigningKey::parse(&signer),
            Err(NoteError::UnknownAlgorithm(0x02))
        ));
    }

    #[test]
    fn a_key_hash_that_does_not_match_is_refused() {
        let wrong = PETER_VERIFIER.replace("c74f20a3", "c74f20a4");
        assert!(matches!(
            VerifierKey::parse(&wrong),
            Err(NoteError::KeyHashMismatch {
                stated: 0xc74f20a4,
                actual: 0xc74f20a3
            })
        ));
        let wrong = PETER_SIGNER.replace("c74f20a3", "00000000");
        assert!(matches!(
            SigningKey::parse(&wrong),
            Err(NoteError::KeyHashMismatch {
                stated: 0,
                actual: 0xc74f20a3
            })
        ));
        for bad in ["c74f20a", "c74f20a30", "+c74f20a", "c74f20ag"] {
            let text = PETER_VERIFIER.replace("c74f20a3", bad);
            assert!(
                matches!(
                    VerifierKey::parse(&text),
                    Err(NoteError::MalformedVerifierKey(_))
                ),
                "{text}"
            );
        }
        // Go parses the hash with ParseUint, which takes upper case too.
        let upper = PETER_VERIFIER.replace("c74f20a3", "C74F20A3");
        assert_eq!(VerifierKey::parse(&upper).unwrap(), peter());
    }

    #[test]
    fn bad_key_names_are_refused() {
        let bad = [
            "",
            "a+b",
            "a b",
            "a\tb",
            "a\nb",
            "a\u{a0}b",
            "a\u{85}b",
            "a\u{2028}b",
            "a\u{3000}b",
            "a\u{1}b",
        ];
        let encoded = peter().encoded();
        for name in bad {
            assert!(!is_key_name(name), "{name:?}");
            assert!(
                matches!(generate(name), Err(NoteError::InvalidName(_))),
                "{name:?}"
            );
            // A verifier key with this name and a correct hash.
            let text = verifier_text(name, &encoded);
            assert!(VerifierKey::parse(&text).is_err(), "{text:?}");
        }
        for good in ["PeterNeumann", "example.com/log42", "ünïcödé", "a\u{200b}b"] {
            assert!(is_key_name(good), "{good:?}");
            let key = VerifierKey::parse(&verifier_text(good, &encoded)).unwrap();
            assert_eq!(key.name(), good);
        }
    }

    #[test]
    fn generated_keys_sign_and_open() {
        let (signer_text, verifier_text) = generate("example.com/waguard-audit").unwrap();
        assert!(signer_text.starts_with("PRIVATE+KEY+example.com/waguard-audit+"));
        let signer = SigningKey::parse(&signer_text).unwrap();
        let verifier = VerifierKey::parse(&verifier_text).unwrap();
        assert_eq!(signer.verifier(), verifier);
        assert_eq!(verifier.to_text(), verifier_text);

        for text in [
            TEXT,
            "\n",
            "a\n\nb\n",
            "ends in a blank line\n\n",
            "— dash\n",
        ] {
            let note = signer.sign(text).unwrap();
            assert_eq!(open(&note, &verifier).unwrap(), text, "{note:?}");
        }
        let (_, other) = generate("example.com/waguard-audit").unwrap();
        assert_ne!(other, verifier_text, "two generated keys are the same");
    }

    #[test]
    fn a_changed_text_byte_fails() {
        let note = go_note().replacen("If you", "if you", 1);
        assert!(matches!(
            open(&note, &peter()),
            Err(NoteError::BadSignature { name, hash: 0xc74f20a3 }) if name == "PeterNeumann"
        ));
        // Go's vector: four base64 characters inserted into the signature.
        let note = format!("{TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
        assert!(matches!(
            open(&note, &peter()),
            Err(NoteError::BadSignature { .. })
        ));
    }

    #[test]
    fn a_signature_by_another_key_fails() {
        let enoch_only = format!("{TEXT}\n{ENOCH_SIG}");
        assert!(matches!(
            open(&enoch_only, &peter()),
            Err(NoteError::NotSigned {
                hash: 0xc74f20a3,
                ..
            })
        ));
        // Same name, another key: another hash, so its line is not Peter's.
        let (impostor, _) = generate("PeterNeumann").unwrap();
        let impostor = SigningKey::parse(&impostor).unwrap();
        let note = impostor.sign(TEXT).unwrap();
        assert!(matches!(
            open(&note, &peter()),
            Err(NoteError::NotSigned { .. })
        ));
        // Another key claiming Peter's name and hash is caught by the signature itself.
        let forged = note
            .rsplit_once("PeterNeumann ")
            .map(|(_, b64)| BASE64.decode(b64.trim_end()).unwrap())
            .unwrap();
        let forged = peter_sig_with(|blob| {
            blob[4..].copy_from_slice(&forged[4..]);
        });
        let note = format!("{TEXT}\n{forged}");
        assert!(matches!(
            open(&note, &peter()),
            Err(NoteError::BadSignature { .. })
        ));
        // A forged line next to a good one is refused too.
        let note = format!("{TEXT}\n{PETER_SIG}{forged}");
        assert!(matches!(
            open(&note, &peter()),
            Err(NoteError::BadSignature { .. })
        ));
    }

    #[test]
    fn a_truncated_signature_fails() {
        let short = peter_sig_with(|blob| blob.truncate(67));
        assert!(matches!(
            open(&format!("{TEXT}\n{short}"), &peter()),
            Err(NoteError::BadSignature { .. })
        ));
        let hash_only = peter_sig_with(|blob| blob.truncate(4));
        assert!(matches!(
            open(&format!("{TEXT}\n{hash_only}"), &peter()),
            Err(NoteError::MalformedNote(_))
        ));
        let cut_base64 = PETER_SIG.replace("AM=\n", "A\n");
        assert_ne!(cut_base64, PETER_SIG);
        assert!(matches!(
            open(&format!("{TEXT}\n{cut_base64}"), &peter()),
            Err(NoteError::MalformedNote(_))
        ));
    }

    #[test]
    fn a_wrong_key_hash_in_the_signature_line_makes_it_another_keys() {
        let wrong = peter_sig_with(|blob| blob[3] ^= 1);
        assert!(matches!(
            open(&format!("{TEXT}\n{wrong}"), &peter()),
            Err(NoteError::NotSigned { .. })
        ));
        // Go's vector.
        let wrong = PETER_SIG.replace("x08g", "xxxx");
        assert!(matches!(
            open(&format!("{TEXT}\n{wrong}"), &peter()),
            Err(NoteError::NotSigned { .. })
        ));
    }

    #[test]
    fn go_malformed_notes_are_refused() {
        // Go's badMsgs (its "\xff" case cannot be a &str), then a few more.
        let bad = [
            TEXT.to_string(),
            format!("{TEXT}\n"),
            format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
            format!("\u{1}{TEXT}\n{PETER_SIG}"),
            format!(
                "{TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
            ),
            format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
            format!("{TEXT}\n{}", PETER_SIG.replace('—', "-")),
            format!("{TEXT}\n{}", PETER_SIG.replace("— ", "—")),
            format!("{TEXT}\n{}", PETER_SIG.replace("Neumann ", "Neumann  ")),
            format!("{TEXT}\r\n{PETER_SIG}"),
            format!("{TEXT}\n{}", PETER_SIG.repeat(101)),
        ];
        for note in bad {
            assert!(
                matches!(open(&note, &peter()), Err(NoteError::MalformedNote(_))),
                "{note:?}"
            );
        }
        // The spec's minimum is 16; Go's maximum is 100.
        assert_eq!(
            open(&format!("{TEXT}\n{}", PETER_SIG.repeat(100)), &peter()).unwrap(),
            TEXT
        );
    }

    #[test]
    fn sign_refuses_text_go_could_not_open() {
        let signer = SigningKey::parse(PETER_SIGNER).unwrap();
        for text in ["", "abc", "a\tb\n", "a\r\n", "\u{1}\n", "\u{1b}[31m\n"] {
            assert!(
                matches!(signer.sign(text), Err(NoteError::InvalidText(_))),
                "{text:?}"
            );
        }
    }

    #[test]
    fn debug_does_not_show_the_seed() {
        let signer = SigningKey::parse(PETER_SIGNER).unwrap();
        let shown = format!("{signer:?}");
        assert!(shown.contains(PETER_VERIFIER), "{shown}");
        assert!(!shown.contains("PRIVATE"), "{shown}");
        assert!(!shown.contains("AYEKFALV"), "{shown}");
        let seed = BASE64
            .decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
            .unwrap();
        assert!(!shown.contains(&hex::encode(&seed[1..])), "{shown}");
        // Nor do errors about a signer key.
        let error = SigningKey::parse(&PETER_SIGNER.replace("c74f20a3", "c74f20a")).unwrap_err();
        assert!(!error.to_string().contains("AYEKFALV"), "{error}");
    }

    #[test]
    fn checkpoint_round_trips() {
        // Go's sumdb/tlog golden tree: the hash is the RFC 6962 leaf hash of "hello world".
        let golden =
            "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n";
        let checkpoint = Checkpoint::parse(golden).unwrap();
        let leaf: [u8; 32] = Sha256::new()
            .chain_update([0u8])
            .chain_update(b"hello world")
            .finalize()
            .into();
        assert_eq!(
            checkpoint,
            Checkpoint {
                origin: "go.sum database tree".into(),
                size: 123456789012,
                hash: leaf,
                extensions: vec![],
            }
        );
        assert_eq!(checkpoint.to_text(), golden);

        let with_extensions = Checkpoint {
            origin: "example.com/waguard audit".into(),
            size: 0,
            hash: [7; 32],
            extensions: vec!["timestamp 1700000000".into(), "— not a signature".into()],
        };
        let text = with_extensions.to_text();
        assert_eq!(Checkpoint::parse(&text).unwrap(), with_extensions);
        let max = Checkpoint {
            size: u64::MAX,
            ..with_extensions
        };
        assert_eq!(Checkpoint::parse(&max.to_text()).unwrap(), max);

        // Signed and opened, as the audit writer and verifier use it.
        let signer = SigningKey::parse(PETER_SIGNER).unwrap();
        let note = signer.sign(&text).unwrap();
        assert_eq!(
            Checkpoint::parse(open(&note, &peter()).unwrap())
                .unwrap()
                .size,
            0
        );
    }

    #[test]
    fn checkpoint_parse_is_strict() {
        let hash = BASE64.encode([1u8; 32]);
        let sized = |size: &str| format!("origin\n{size}\n{hash}\n");
        for size in [
            "01",
            "00",
            "+1",
            "-1",
            "",
            " 1",
            "1 ",
            "0x1",
            "1_0",
            "18446744073709551616",
        ] {
            assert!(
                matches!(
                    Checkpoint::parse(&sized(size)),
                    Err(NoteError::InvalidCheckpoint(_))
                ),
                "{size:?}"
            );
        }
        let hashed = |hash: &str| format!("origin\n1\n{hash}\n");
        let bad_hashes = [
            BASE64.encode([1u8; 31]),
            BASE64.encode([1u8; 33]),
            String::new(),
            hash.trim_end_matches('=').to_string(),
            // Go's tlog vector.
            "TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=".into(),
        ];
        for hash in bad_hashes {
            assert!(
                matches!(
                    Checkpoint::parse(&hashed(&hash)),
                    Err(NoteError::InvalidCheckpoint(_))
                ),
                "{hash:?}"
            );
        }
        let bad = [
            format!("\n1\n{hash}\n"),
            format!("origin\n1\n{hash}"),
            "origin\n1\n".to_string(),
            "origin\n".to_string(),
            String::new(),
            format!("origin\n1\n{hash}\n\n"),
            format!("origin\n1\n{hash}\next\n\nmore\n"),
            format!("orig\tin\n1\n{hash}\n"),
            "go.sum database tree\n0xabcdef\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n".into(),
        ];
        for text in bad {
            assert!(
                matches!(
                    Checkpoint::parse(&text),
                    Err(NoteError::InvalidCheckpoint(_))
                ),
                "{text:?}"
            );
        }
    }
}
