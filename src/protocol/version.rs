//! Protocol versions as both protocols put them on the wire: `major << 8 | minor`.

use std::fmt;

/// A serve (2.x) or worker (1.x) protocol version. Ordered like Nix compares
/// them: major first, then minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion {
    pub major: u8,
    pub minor: u8,
}

impl ProtocolVersion {
    pub const fn new(major: u8, minor: u8) -> Self {
        ProtocolVersion { major, minor }
    }

    /// Decodes the wire form as Nix does: it reads an `unsigned int` (a
    /// larger number is an error, `None` here) and keeps bits 8–15 as the
    /// major and 0–7 as the minor (`GET_PROTOCOL_MAJOR`/`MINOR`,
    /// `Version::Number::fromWire`), dropping any bit above.
    pub const fn from_wire(n: u64) -> Option<Self> {
        if n > u32::MAX as u64 {
            return None;
        }
        Some(Self::new(((n & 0xff00) >> 8) as u8, (n & 0xff) as u8))
    }

    pub const fn to_wire(self) -> u64 {
        (self.major as u64) << 8 | self.minor as u64
    }
}

impl From<ProtocolVersion> for u64 {
    fn from(v: ProtocolVersion) -> u64 {
        v.to_wire()
    }
}

impl TryFrom<u64> for ProtocolVersion {
    type Error = u64;

    fn try_from(n: u64) -> Result<Self, u64> {
        Self::from_wire(n).ok_or(n)
    }
}

/// "2.7", "1.37": how Nix's own messages print versions.
impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trip_and_display() {
        let v = ProtocolVersion::from_wire(0x207).unwrap();
        assert_eq!(v, ProtocolVersion::new(2, 7));
        assert_eq!(v.to_string(), "2.7");
        assert_eq!(u64::from(ProtocolVersion::new(1, 37)), 0x125);
        assert_eq!(ProtocolVersion::new(1, 37).to_string(), "1.37");
        // Nix masks bits above 15 away, and refuses what is no `unsigned int`.
        assert_eq!(
            ProtocolVersion::from_wire(0xab_0207),
            Some(ProtocolVersion::new(2, 7))
        );
        assert_eq!(ProtocolVersion::try_from(0x1_0000_0000), Err(0x1_0000_0000));
    }

    #[test]
    fn orders_by_major_then_minor() {
        assert!(ProtocolVersion::new(1, 38) < ProtocolVersion::new(2, 0));
        assert!(ProtocolVersion::new(1, 9) < ProtocolVersion::new(1, 10));
        assert_eq!(
            ProtocolVersion::new(1, 37).min(ProtocolVersion::new(1, 34)),
            ProtocolVersion::new(1, 34)
        );
    }
}
