//! The IPv4 range tenant networks take their subnets from, one /24 each.
//!
//! Left to itself, Docker gives every new bridge network a /16 of 172.17-31 or a /20 of
//! 192.168: about 30 networks on an engine, after which creating one fails ("could not find an
//! available, non-overlapping IPv4 address pool"). A node makes one network per tenant, so
//! that would cap an engine at some 30 tenants, all nodes on it together. Naming each tenant
//! network's subnet from a range of our own lifts the cap (a /16 holds 256 tenant networks)
//! and leaves Docker's default pools to everything else on the engine.

use std::net::Ipv4Addr;
use std::str::FromStr;

/// A range of IPv4 addresses, split into /24 subnets for tenant networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantSubnets {
    base: u32,
    prefix: u8,
}

/// Prefix length of one tenant network: 254 addresses, far more containers than one tenant
/// holds on one engine.
pub const TENANT_PREFIX: u8 = 24;

impl TenantSubnets {
    /// The default, 10.213.0.0/16: private, outside Docker's default pools, 256 networks.
    pub const DEFAULT: Self = Self {
        base: u32::from_be_bytes([10, 213, 0, 0]),
        prefix: 16,
    };

    /// How many tenant networks the range holds.
    pub fn len(&self) -> usize {
        1 << (TENANT_PREFIX - self.prefix)
    }

    /// Never empty (a range is at most a /24); here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Every /24 of the range, lowest first, as `a.b.c.0/24`.
    pub fn subnets(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.len() as u32).map(move |i| {
            let net = Ipv4Addr::from(self.base + (i << (32 - TENANT_PREFIX)));
            format!("{net}/{TENANT_PREFIX}")
        })
    }
}

impl Default for TenantSubnets {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl std::fmt::Display for TenantSubnets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

impl FromStr for TenantSubnets {
    type Err = String;

    /// `a.b.c.d/n` with n in 8..=24 and no address bits past the prefix.
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s.split_once('/').ok_or_else(|| {
            format!("tenant_subnets {s:?} must be an IPv4 range like 10.213.0.0/16")
        })?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("tenant_subnets {s:?}: {addr:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=TENANT_PREFIX).contains(p))
            .ok_or_else(|| {
                format!("tenant_subnets {s:?}: the prefix must be 8 to {TENANT_PREFIX} (each tenant takes a /{TENANT_PREFIX})")
            })?;
        let base = u32::from(addr);
        if base & (u32::MAX >> prefix) != 0 {
            return Err(format!(
                "tenant_subnets {s:?}: {addr} has bits set past /{prefix} (did you mean {}/{prefix}?)",
                Ipv4Addr::from(base & !(u32::MAX >> prefix))
            ));
        }
        Ok(Self { base, prefix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_splits_into_its_24s_and_bad_ranges_say_why() {
        let r: TenantSubnets = "10.213.0.0/16".parse().expect("valid");
        assert_eq!(r, TenantSubnets::DEFAULT);
        assert_eq!(r.to_string(), "10.213.0.0/16");
        assert_eq!(r.len(), 256);
        let all: Vec<String> = r.subnets().collect();
        assert_eq!(all[0], "10.213.0.0/24");
        assert_eq!(all[255], "10.213.255.0/24");
        let one: TenantSubnets = "192.168.7.0/24".parse().expect("valid");
        assert_eq!(one.subnets().collect::<Vec<_>>(), ["192.168.7.0/24"]);
        assert_eq!(
            "10.0.0.0/8".parse::<TenantSubnets>().expect("valid").len(),
            65536
        );
        for (bad, says) in [
            ("10.213.0.0", "like 10.213.0.0/16"),
            ("10.213.0/16", "not an IPv4 address"),
            ("10.213.0.0/25", "prefix must be 8 to 24"),
            ("10.0.0.0/7", "prefix must be 8 to 24"),
            ("10.213.0.0/x", "prefix must be 8 to 24"),
            ("10.213.1.0/16", "did you mean 10.213.0.0/16"),
        ] {
            let e = bad.parse::<TenantSubnets>().expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
