//! Who is calling: the caller registry (callers file) and inbound SigV4 verification.

mod callers;
pub mod sigv4;

pub use callers::{Caller, Callers, CallersError, Secret};
pub use sigv4::{Authenticated, verify, verify_for_service, verify_with_token};

/// The SigV4 service name Well-Architected requests are signed for.
pub const SERVICE: &str = "wellarchitected";

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`...: lowercase words, then a number.
pub fn is_region_name(s: &str) -> bool {
    let mut parts = s.split('-');
    let Some(first) = parts.next() else {
        return false;
    };
    if first.len() != 2 || !first.bytes().all(|b| b.is_ascii_lowercase()) {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    let Some((last, middle)) = rest.split_last() else {
        return false;
    };
    !middle.is_empty()
        && middle
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 16 && p.bytes().all(|b| b.is_ascii_lowercase()))
        && !last.is_empty()
        && last.len() <= 2
        && last.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::is_region_name;

    #[test]
    fn region_names() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-4",
        ] {
            assert!(is_region_name(ok), "{ok}");
        }
        for bad in [
            "",
            "us",
            "us-east",
            "US-east-1",
            "us-east-1a",
            "us--1",
            "x-y-1",
        ] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }
}
