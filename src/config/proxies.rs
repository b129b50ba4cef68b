//! `TrustedProxies`: the peers whose `X-Forwarded-Proto` header is believed.
//!
//! Entries are IP addresses or CIDR ranges (`10.0.0.0/8`, `fd00::/8`).
//! IPv4 peers seen on a dual-stack socket as `::ffff:a.b.c.d` are compared
//! as the IPv4 address they are.

use std::fmt;
use std::net::IpAddr;

/// The default: loopback only, so a load balancer or TLS terminator on the
/// same machine keeps working while nobody else can claim HTTPS.
pub const DEFAULT_TRUSTED_PROXIES: [&str; 2] = ["127.0.0.0/8", "::1/128"];

/// One address range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Parses `ADDR` or `ADDR/PREFIX`; the address may have bits set past
    /// the prefix (they are ignored, as most proxies' settings do).
    pub fn parse(text: &str) -> Result<IpRange, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR range"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{text:?} has a prefix length outside 0..={max}")),
            },
        };
        Ok(IpRange { network, prefix })
    }

    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_equal(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_equal(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn prefix_equal(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let (whole, rest) = (bits / 8, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[whole] & mask == b[whole] & mask
}

/// Parses a `TrustedProxies` list; empty entries (an empty environment
/// variable) are skipped, so an empty list trusts nobody.
pub fn parse_trusted_proxies(entries: &[String]) -> Result<Vec<IpRange>, String> {
    entries
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .map(IpRange::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_match_by_prefix() {
        let r = IpRange::parse("10.1.0.0/16").unwrap();
        assert!(r.contains(ip("10.1.255.3")));
        assert!(!r.contains(ip("10.2.0.1")));
        assert!(r.contains(ip("::ffff:10.1.2.3")), "v4-mapped peers");
        let odd = IpRange::parse("192.168.1.128/25").unwrap();
        assert!(odd.contains(ip("192.168.1.200")));
        assert!(!odd.contains(ip("192.168.1.127")));
        let one = IpRange::parse(" 203.0.113.7 ").unwrap();
        assert!(one.contains(ip("203.0.113.7")));
        assert!(!one.contains(ip("203.0.113.8")));
        let v6 = IpRange::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("fe80::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all = IpRange::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        assert!(!all.contains(ip("::1")));
    }

    #[test]
    fn default_is_loopback_only() {
        let defaults: Vec<String> = DEFAULT_TRUSTED_PROXIES
            .iter()
            .map(|s| s.to_string())
            .collect();
        let ranges = parse_trusted_proxies(&defaults).unwrap();
        let trusted = |s: &str| ranges.iter().any(|r| r.contains(ip(s)));
        assert!(trusted("127.0.0.1"));
        assert!(trusted("127.3.4.5"));
        assert!(trusted("::1"));
        assert!(trusted("::ffff:127.0.0.1"));
        assert!(!trusted("10.0.0.1"));
        assert!(!trusted("192.168.0.10"));
        assert!(!trusted("fe80::1"));
    }

    #[test]
    fn bad_entries_are_refused_and_empty_ones_skipped() {
        for bad in [
            "localhost",
            "10.0.0.0/33",
            "::1/129",
            "10.0.0.0/-1",
            "1.2.3.4/x",
        ] {
            assert!(IpRange::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_trusted_proxies(&["".into(), " ".into()]).unwrap(),
            vec![]
        );
        assert!(parse_trusted_proxies(&["127.0.0.1".into(), "nope".into()]).is_err());
    }
}
