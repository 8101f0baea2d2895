//! Tar headers (POSIX ustar, GNU and PAX). Iterating members is done with the `tar` crate
//! in `scan`; this module holds the checks that detection needs.

/// True when a 512-byte tar header's checksum field matches its contents. The checksum is
/// the sum of all header bytes with the checksum field (bytes 148..156) read as spaces.
pub fn header_checksum_ok(header: &[u8]) -> bool {
    let (Some(field), Some(head)) = (header.get(148..156), header.get(..512)) else {
        return false;
    };
    let digits: String = field
        .iter()
        .map(|&b| b as char)
        .filter(|c| c.is_ascii_digit())
        .collect();
    let Ok(stored) = u32::from_str_radix(&digits, 8) else {
        return false;
    };
    let sum = head.iter().enumerate().fold(0u32, |acc, (i, &b)| {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        acc.wrapping_add(u32::from(b))
    });
    sum == stored
}

pub mod torch_legacy;
