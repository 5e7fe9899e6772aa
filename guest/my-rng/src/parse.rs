//! Parsing of command-line values (shared by the CLI and the e2e program).

use my_rng_spec::Algorithm;

/// Parse an unsigned integer written in decimal or as `0x`-prefixed hexadecimal.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, radix) = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None => (t, 10),
    };
    // from_str_radix accepts a leading '+'; a value is digits only.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(format!(
            "invalid number {s:?}: expected decimal or 0x-prefixed hex"
        ));
    }
    u64::from_str_radix(digits, radix).map_err(|_| format!("number {s:?} is too large"))
}

/// Parse a `u32` in decimal or `0x` hex (seeds, algorithm ids).
pub fn parse_u32(s: &str) -> Result<u32, String> {
    let v = parse_u64(s)?;
    u32::try_from(v).map_err(|_| format!("number {s:?} does not fit in 32 bits"))
}

/// An algorithm as given on a command line: a known name, or a raw id (which may be one the
/// device rejects; passing it through lets the driver's EINVAL be observed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlgoArg {
    /// A name this library knows.
    Known(Algorithm),
    /// A numeric id, known or not.
    Id(u32),
}

impl AlgoArg {
    /// The id to write to the device.
    pub fn id(self) -> u32 {
        match self {
            AlgoArg::Known(a) => a.id(),
            AlgoArg::Id(id) => id,
        }
    }
}

/// Parse an algorithm name (`glibc`, `xoshiro256pp`, `chacha20`, `host`, case-insensitive)
/// or id (decimal or 0x hex).
pub fn parse_algorithm(s: &str) -> Result<AlgoArg, String> {
    let t = s.trim();
    if let Some(a) = Algorithm::from_name(&t.to_ascii_lowercase()) {
        return Ok(AlgoArg::Known(a));
    }
    if t.starts_with(|c: char| c.is_ascii_digit()) {
        return parse_u32(t).map(AlgoArg::Id);
    }
    let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
    Err(format!(
        "unknown algorithm {s:?}: expected one of {} or a numeric id",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_and_hex() {
        assert_eq!(parse_u32("0"), Ok(0));
        assert_eq!(parse_u32("66"), Ok(66));
        assert_eq!(parse_u32("0x42"), Ok(0x42));
        assert_eq!(parse_u32("0X42"), Ok(0x42));
        assert_eq!(parse_u32("0xDeadBeef"), Ok(0xdead_beef));
        assert_eq!(parse_u32("4294967295"), Ok(u32::MAX));
        assert_eq!(parse_u32("0xffffffff"), Ok(u32::MAX));
        assert_eq!(parse_u32(" 7 "), Ok(7));
        assert_eq!(parse_u64("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn bad_values_rejected() {
        for bad in [
            "",
            " ",
            "0x",
            "-1",
            "+1",
            "1.5",
            "abc",
            "0xg",
            "42x",
            "0b101",
            "4294967296",
            "0x100000000",
            "1e3",
        ] {
            assert!(parse_u32(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_u64("18446744073709551616").is_err());
    }

    #[test]
    fn algorithms() {
        assert_eq!(
            parse_algorithm("glibc"),
            Ok(AlgoArg::Known(Algorithm::Glibc))
        );
        assert_eq!(
            parse_algorithm("ChaCha20"),
            Ok(AlgoArg::Known(Algorithm::ChaCha20))
        );
        assert_eq!(parse_algorithm("1"), Ok(AlgoArg::Id(1)));
        assert_eq!(parse_algorithm("0x3"), Ok(AlgoArg::Id(3)));
        assert_eq!(parse_algorithm("7"), Ok(AlgoArg::Id(7)));
        assert_eq!(parse_algorithm("7").unwrap().id(), 7);
        assert_eq!(
            parse_algorithm("xoshiro256pp").unwrap().id(),
            Algorithm::Xoshiro256pp.id()
        );
        assert!(parse_algorithm("mt19937").is_err());
        assert!(parse_algorithm("-1").is_err());
        assert!(parse_algorithm("").is_err());
    }
}
