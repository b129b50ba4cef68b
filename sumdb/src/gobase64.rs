//! Base64 as Go's `base64.StdEncoding` decodes it.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

/// Go's standard encoding: padding required, non-zero trailing bits
/// accepted (Go is not in strict mode), `\r` and `\n` skipped.
const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Decodes `s` the way `base64.StdEncoding.DecodeString` does.
pub(crate) fn decode(s: &str) -> Option<Vec<u8>> {
    if s.contains(['\r', '\n']) {
        let cleaned: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        return GO_STD.decode(cleaned).ok();
    }
    GO_STD.decode(s).ok()
}

/// Encodes `data` the way `base64.StdEncoding.EncodeToString` does.
pub(crate) fn encode(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_go() {
        assert_eq!(decode("aGk=").unwrap(), b"hi");
        // Non-zero trailing bits: Go's non-strict decoder accepts them.
        assert_eq!(decode("aGl=").unwrap(), b"hi");
        // Padding is required.
        assert!(decode("aGk").is_none());
        // Newlines are skipped.
        assert_eq!(decode("aG\nk=").unwrap(), b"hi");
        assert!(decode("a!k=").is_none());
        assert_eq!(encode(b"hi"), "aGk=");
    }
}
