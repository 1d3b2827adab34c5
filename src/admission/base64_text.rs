//! Standard base64 (RFC 4648 section 4, with padding) written straight into the answer: the
//! patch of every mutated review is sent this way, and the `base64` crate's general-purpose
//! engine spent 14k instructions on a seed pod's 2.6 KB patch, an eighth of the review
//! (docs/benchmarks.md). Here each 12 bits of input are one lookup of the two characters they
//! encode, and six input bytes are eight output bytes per step.

/// The standard alphabet.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The two characters of every 12-bit value, the first in the low byte.
static PAIRS: [u16; 4096] = pairs();

const fn pairs() -> [u16; 4096] {
    let mut table = [0u16; 4096];
    let mut i = 0;
    while i < 4096 {
        table[i] = ALPHABET[i >> 6] as u16 | (ALPHABET[i & 63] as u16) << 8;
        i += 1;
    }
    table
}

/// The length of the base64 text of `len` bytes, padding included.
pub(super) fn encoded_len(len: usize) -> usize {
    len.div_ceil(3) * 4
}

/// Appends the base64 text of `bytes` to `out`.
pub(super) fn encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    // Reserved, then appended eight bytes at a time: zero-filling the text first and
    // overwriting it cost a memset of its whole length.
    out.reserve(encoded_len(bytes.len()));
    let mut sixes = bytes.chunks_exact(6);
    for input in &mut sixes {
        let bits = u64::from_be_bytes([
            input[0], input[1], input[2], input[3], input[4], input[5], 0, 0,
        ]);
        let chars = u64::from(PAIRS[(bits >> 52) as usize])
            | u64::from(PAIRS[(bits >> 40) as usize & 0xfff]) << 16
            | u64::from(PAIRS[(bits >> 28) as usize & 0xfff]) << 32
            | u64::from(PAIRS[(bits >> 16) as usize & 0xfff]) << 48;
        out.extend_from_slice(&chars.to_le_bytes());
    }

    // At most five bytes are left: one whole group of three, then one or two padded.
    let mut rest = sixes.remainder();
    if let [a, b, c, ..] = *rest {
        let bits = u32::from_be_bytes([0, a, b, c]);
        let chars =
            u32::from(PAIRS[(bits >> 12) as usize]) | u32::from(PAIRS[bits as usize & 0xfff]) << 16;
        out.extend_from_slice(&chars.to_le_bytes());
        rest = &rest[3..];
    }
    match *rest {
        [a] => {
            let pair = PAIRS[usize::from(a) << 4].to_le_bytes();
            out.extend_from_slice(&[pair[0], pair[1], b'=', b'=']);
        }
        [a, b] => {
            let bits = usize::from(a) << 10 | usize::from(b) << 2;
            let pair = PAIRS[bits >> 6 & 0xfff].to_le_bytes();
            out.extend_from_slice(&[pair[0], pair[1], ALPHABET[bits & 63], b'=']);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    /// Every length up to three groups of six past a few hundred bytes, and every byte value
    /// in every position: the same text as the `base64` crate's standard engine.
    #[test]
    fn the_same_text_as_the_standard_engine() {
        let data: Vec<u8> = (0..600u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in 0..data.len() {
            for offset in [0, 1, 2] {
                let bytes = &data[offset.min(len)..len];
                let mut out = b"prefix".to_vec();
                encode_into(bytes, &mut out);
                let expected = base64::engine::general_purpose::STANDARD.encode(bytes);
                assert_eq!(&out[..6], b"prefix");
                assert_eq!(std::str::from_utf8(&out[6..]).unwrap(), expected, "{len}");
                assert_eq!(encoded_len(bytes.len()), expected.len());
            }
        }
        for byte in 0..=255u8 {
            for len in 1..=8 {
                for at in 0..len {
                    let mut bytes = vec![0x5a; len];
                    bytes[at] = byte;
                    let mut out = Vec::new();
                    encode_into(&bytes, &mut out);
                    assert_eq!(
                        out,
                        base64::engine::general_purpose::STANDARD
                            .encode(&bytes)
                            .into_bytes()
                    );
                }
            }
        }
    }
}
