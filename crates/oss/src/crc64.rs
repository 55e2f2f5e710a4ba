//! CRC-64/XZ combination: the CRC of `A‖B` from the CRCs of `A` and `B` and the length of `B`, so
//! a multipart object's CRC comes from its parts' without reading them again (zlib's method, on
//! the 64-bit polynomial).

/// CRC-64/XZ polynomial, bit-reflected.
const POLY_REFLECTED: u64 = 0xC96C_5795_D787_0F42;

fn times(mat: &[u64; 64], mut vec: u64) -> u64 {
    let mut sum = 0;
    let mut i = 0;
    while vec != 0 {
        if vec & 1 != 0 {
            sum ^= mat[i];
        }
        vec >>= 1;
        i += 1;
    }
    sum
}

fn square(out: &mut [u64; 64], mat: &[u64; 64]) {
    for n in 0..64 {
        out[n] = times(mat, mat[n]);
    }
}

pub fn combine(mut crc1: u64, crc2: u64, mut len2: u64) -> u64 {
    if len2 == 0 {
        return crc1;
    }
    let (mut even, mut odd) = ([0u64; 64], [0u64; 64]);
    odd[0] = POLY_REFLECTED;
    let mut row = 1u64;
    for slot in odd.iter_mut().skip(1) {
        *slot = row;
        row <<= 1;
    }
    square(&mut even, &odd); // two zero bits
    square(&mut odd, &even); // four zero bits
    loop {
        square(&mut even, &odd);
        if len2 & 1 != 0 {
            crc1 = times(&even, crc1);
        }
        len2 >>= 1;
        if len2 == 0 {
            break;
        }
        square(&mut odd, &even);
        if len2 & 1 != 0 {
            crc1 = times(&odd, crc1);
        }
        len2 >>= 1;
        if len2 == 0 {
            break;
        }
    }
    crc1 ^ crc2
}

#[cfg(test)]
mod tests {
    use super::combine;
    use crate::CRC64;
    use proptest::prelude::*;

    #[test]
    fn reference_values() {
        assert_eq!(CRC64.checksum(b"123456789"), 11051210869376104954);
        assert_eq!(CRC64.checksum(b"hello world"), 5981764153023615706);
        assert_eq!(combine(CRC64.checksum(b"hello "), CRC64.checksum(b"world"), 5), 5981764153023615706);
    }

    proptest! {
        #[test]
        fn combine_equals_direct(a in proptest::collection::vec(any::<u8>(), 0..300), b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let whole: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
            prop_assert_eq!(combine(CRC64.checksum(&a), CRC64.checksum(&b), b.len() as u64), CRC64.checksum(&whole));
        }
    }
}
