//! Standard base64 (RFC 4648 section 4, with padding) appended straight into the answer: the
//! patch of every mutated review is sent this way. `base64-simd` encodes 12 or 24 bytes per
//! SIMD step (SSSE3/AVX2 or NEON, chosen at run time); the `base64` crate's general-purpose
//! engine spent 14k instructions on a seed pod's patch and our own table-driven encoder 13k,
//! an eighth of the review (docs/benchmarks.md).

/// The length of the base64 text of `len` bytes, padding included.
pub(super) fn encoded_len(len: usize) -> usize {
    len.div_ceil(3) * 4
}

/// Appends the base64 text of `bytes` to `out`.
pub(super) fn encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    base64_simd::STANDARD.encode_append(bytes, out);
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
