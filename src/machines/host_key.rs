//! Column #7: the pinned host key, `base64 -w0` of the builder's `.pub` line.
//!
//! Nix only checks that the column is valid base64. rbtop also looks at what
//! it decodes to, because a pin that is valid base64 but not a public key line
//! can never match and fails every connection with "Host key verification failed".

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Standard alphabet; padding optional and stray trailing bits ignored, as
/// Nix's own decoder does.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decode as Nix's `base64Decode` does: it stops at the first `=` and drops
/// a final lone character (6 bits make no byte) after checking it.
fn nix_decode(field: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let data = field.split('=').next().unwrap_or("");
    if data.len() % 4 == 1 {
        let last = data.len() - 1;
        let byte = data.as_bytes()[last];
        if !(byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/') {
            return Err(base64::DecodeError::InvalidByte(last, byte));
        }
        return LENIENT.decode(&data[..last]);
    }
    LENIENT.decode(data)
}

/// What column #7 holds once decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// A `<type> <base64 blob> [comment]` line, as in a `.pub` file.
    PublicKeyLine { key_type: String },
    /// Valid base64, but something else; the string says what and how to fix it.
    Suspicious(String),
}

/// Decode a pinned host key; `Err` means Nix itself would reject the line.
pub fn check(field: &str) -> Result<HostKeyCheck, String> {
    let bytes =
        nix_decode(field).map_err(|e| format!("is not valid base64: {}", explain(field, &e)))?;
    Ok(classify(&bytes))
}

/// The decoder reports byte offsets; operators count characters.
fn explain(field: &str, e: &base64::DecodeError) -> String {
    use base64::DecodeError::*;
    let at = |offset: usize| {
        // The offset may fall inside a multi-byte character: step back to its start.
        let start = (0..=offset.min(field.len()))
            .rev()
            .find(|&i| field.is_char_boundary(i))
            .unwrap_or(0);
        let c = field[start..].chars().next().unwrap_or('?');
        (
            c.escape_debug().to_string(),
            field[..start].chars().count() + 1,
        )
    };
    match e {
        InvalidByte(offset, _) => {
            let (c, position) = at(*offset);
            format!("invalid character '{c}' at position {position}")
        }
        InvalidLastSymbol { offset, .. } => {
            let (c, position) = at(*offset);
            format!(
                "the last character '{c}' (position {position}) leaves stray bits: truncated or \
                 corrupted"
            )
        }
        InvalidLength(len) => format!("{len} base64 characters cannot encode whole bytes"),
        InvalidPadding => "misplaced '=' padding".to_string(),
        #[allow(unreachable_patterns)] // the enum may grow
        _ => e.to_string(),
    }
}

/// The pin as `<type> <blob>`, ready for a known-hosts line, or why it cannot
/// be used. Only one key line is accepted: no second line, no marker such as
/// `@cert-authority`, no comment carried over.
pub fn pinned_key(field: &str) -> Result<String, String> {
    let unusable = |why: String| format!("the pinned host key (column #7) {why}");
    match check(field).map_err(unusable)? {
        HostKeyCheck::PublicKeyLine { .. } => {}
        HostKeyCheck::Suspicious(why) => return Err(unusable(why)),
    }
    let bytes = nix_decode(field).map_err(|e| unusable(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| unusable("is not text".to_string()))?;
    let text = text.trim();
    if text.lines().count() != 1 {
        return Err(unusable(
            "decodes to more than one line; expected one .pub line".to_string(),
        ));
    }
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some(key_type), Some(blob)) => Ok(format!("{key_type} {blob}")),
        _ => Err(unusable("is not a .pub line".to_string())),
    }
}

fn classify(bytes: &[u8]) -> HostKeyCheck {
    const HOW: &str = "expected `base64 -w0` of the host's .pub line, e.g. of \
                       /etc/ssh/ssh_host_ed25519_key.pub";
    // An SSH wire-format key blob starts with a u32 length of its type name.
    if bytes.len() > 4 && bytes[..3] == [0, 0, 0] {
        return HostKeyCheck::Suspicious(format!(
            "decodes to a binary key blob (the middle field of a .pub line), \
             not to a whole .pub line, so the pin can never match; {HOW}"
        ));
    }
    let text = String::from_utf8_lossy(bytes);
    let mut words = text.split_whitespace();
    let key_type = words.next().unwrap_or("");
    let blob = words.next().unwrap_or("");
    let looks_like_type = key_type.starts_with("ssh-")
        || key_type.starts_with("ecdsa-")
        || key_type.starts_with("sk-");
    if looks_like_type && LENIENT.decode(blob).is_ok() {
        HostKeyCheck::PublicKeyLine {
            key_type: key_type.to_string(),
        }
    } else {
        let preview: String = text.chars().take(24).collect();
        HostKeyCheck::Suspicious(format!(
            "decodes to '{}', which is not an OpenSSH public key line, so the pin can \
             never match; {HOW}",
            preview.escape_debug()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn a_pin_is_used_as_type_and_blob_only() {
        assert_eq!(
            pinned_key(&b64(&format!("{ED25519_LINE}\n"))).unwrap(),
            ED25519_LINE.rsplit_once(' ').unwrap().0
        );
        // A second line could smuggle a CA or another host into the pin file.
        let smuggled = format!("{ED25519_LINE}\n@cert-authority * {ED25519_LINE}\n");
        assert!(
            pinned_key(&b64(&smuggled))
                .unwrap_err()
                .contains("more than one line")
        );
        assert!(
            pinned_key(&b64("hello world"))
                .unwrap_err()
                .contains("column #7")
        );
        assert!(pinned_key("!!!").unwrap_err().contains("base64"));
    }

    const ED25519_LINE: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJYfqESaiQlOrL3Wm1Q9s9q8b4mjj2nIuyqCZub5aGPi nix@scratchy";

    #[test]
    fn a_real_pub_line_is_accepted() {
        let field = base64::engine::general_purpose::STANDARD.encode(ED25519_LINE);
        assert_eq!(
            check(&field).unwrap(),
            HostKeyCheck::PublicKeyLine {
                key_type: "ssh-ed25519".into()
            }
        );
        assert_eq!(
            pinned_key(&field).unwrap(),
            ED25519_LINE.rsplit_once(' ').unwrap().0
        );
    }

    #[test]
    fn missing_padding_is_tolerated() {
        let field = base64::engine::general_purpose::STANDARD_NO_PAD.encode(ED25519_LINE);
        assert!(matches!(
            check(&field),
            Ok(HostKeyCheck::PublicKeyLine { .. })
        ));
    }

    #[test]
    fn leniency_matches_nix() {
        // Nix stops at the first '=', and ignores a final lone character.
        assert!(check("c3NoLWVkMjU1MTk=garbage!").is_ok());
        assert!(check("c3NoLWVkMjU1MTkx1").is_ok());
        assert!(check("c3NoLWVkMjU1MTkx_").is_err());
    }

    #[test]
    fn bad_characters_are_named_by_character_position() {
        let err = check("abcé").unwrap_err();
        assert!(err.contains("invalid character 'é' at position 4"), "{err}");
        let err = check("клю").unwrap_err();
        assert!(err.contains("invalid character 'к' at position 1"), "{err}");
    }

    #[test]
    fn invalid_base64_is_an_error() {
        assert!(
            check("BAD_BASE64")
                .unwrap_err()
                .contains("not valid base64")
        );
        assert!(check("ssh-ed25519").is_err());
    }

    #[test]
    fn the_bare_key_blob_is_flagged() {
        // The middle field of the .pub line is itself base64, of a binary blob.
        let blob = "AAAAC3NzaC1lZDI1NTE5AAAAIJYfqESaiQlOrL3Wm1Q9s9q8b4mjj2nIuyqCZub5aGPi";
        match check(blob).unwrap() {
            HostKeyCheck::Suspicious(why) => assert!(why.contains("binary key blob")),
            other => panic!("expected a warning, got {other:?}"),
        }
    }

    #[test]
    fn valid_base64_of_garbage_is_flagged() {
        // From Nix's own tests: valid base64, not a key.
        match check("SSH+HOST+PUBLIC+KEY+BASE64+ENCODED==").unwrap() {
            HostKeyCheck::Suspicious(why) => assert!(why.contains("not an OpenSSH public key")),
            other => panic!("expected a warning, got {other:?}"),
        }
    }
}
