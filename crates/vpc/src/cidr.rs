//! CIDR rules of VPCs and vSwitches.

use ipnet::Ipv4Net;
use nimbus_api::ApiError;

/// Blocks a VPC may not use (Alibaba's list): shared address space, multicast, loopback,
/// link-local.
const EXCLUDED: &[&str] = &["100.64.0.0/10", "224.0.0.0/4", "127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/8"];

fn parse(value: &str, param: &str) -> Result<Ipv4Net, ApiError> {
    let net: Ipv4Net = value.trim().parse().map_err(|_| {
        ApiError::new(
            400,
            "InvalidCidrBlock.Malformed",
            format!("Specified {param} {value:?} is not a valid IPv4 CIDR block."),
        )
    })?;
    if net.trunc() != net {
        return Err(ApiError::new(
            400,
            "InvalidCidrBlock.Malformed",
            format!("Specified {param} {value:?} has host bits set; did you mean {}?", net.trunc()),
        ));
    }
    Ok(net)
}

/// A VPC's block: /8 to /28, outside the excluded ranges.
pub fn vpc_block(value: &str) -> Result<Ipv4Net, ApiError> {
    let net = parse(value, "CidrBlock")?;
    if !(8..=28).contains(&net.prefix_len()) {
        return Err(ApiError::new(400, "InvalidCidrBlock.Malformed", "A VPC CidrBlock must be /8 to /28."));
    }
    for ex in EXCLUDED {
        let ex: Ipv4Net = ex.parse().expect("built-in ranges parse");
        if ex.contains(&net.network()) || net.contains(&ex.network()) {
            return Err(ApiError::new(
                400,
                "InvalidCidrBlock.Malformed",
                format!("CidrBlock {net} overlaps the reserved range {ex}, which a VPC cannot use."),
            ));
        }
    }
    Ok(net)
}

/// A vSwitch's block: /16 to /29, inside the VPC's.
pub fn vswitch_block(value: &str, vpc: Ipv4Net) -> Result<Ipv4Net, ApiError> {
    let net = parse(value, "CidrBlock")?;
    if !(16..=29).contains(&net.prefix_len()) {
        return Err(ApiError::new(400, "InvalidCidrBlock.Malformed", "A vSwitch CidrBlock must be /16 to /29."));
    }
    if !vpc.contains(&net) {
        return Err(ApiError::new(
            400,
            "InvalidCidrBlock.Malformed",
            format!("Specified CidrBlock {net} is not inside the VPC's block {vpc}."),
        ));
    }
    Ok(net)
}

pub fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Addresses a vSwitch can give to instances: all but network, gateway, the two after it
/// (reserved as Alibaba does) and broadcast.
pub fn usable_addresses(net: Ipv4Net) -> u64 {
    (1u64 << (32 - net.prefix_len())).saturating_sub(5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vpc_and_vswitch_rules() {
        assert!(vpc_block("198.18.0.0/16").is_ok());
        assert!(vpc_block("10.0.0.0/8").is_ok());
        for bad in [
            "10.0.0.0/7",
            "10.0.0.0/29",
            "100.64.0.0/16",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "300.1.0.0/16",
            "10.0.0.1/16",
        ] {
            assert_eq!(vpc_block(bad).expect_err(bad).code, "InvalidCidrBlock.Malformed", "{bad}");
        }
        let vpc = vpc_block("198.18.0.0/16").expect("vpc");
        assert!(vswitch_block("198.18.1.0/24", vpc).is_ok());
        assert!(vswitch_block("198.19.1.0/24", vpc).is_err(), "outside the VPC");
        assert!(vswitch_block("198.18.0.0/30", vpc).is_err(), "too small");
        assert!(overlaps("198.18.1.0/24".parse().expect("a"), "198.18.1.128/25".parse().expect("b")));
        assert!(!overlaps("198.18.1.0/24".parse().expect("a"), "198.18.2.0/24".parse().expect("b")));
        assert_eq!(usable_addresses("198.18.1.0/24".parse().expect("c")), 251);
    }
}
