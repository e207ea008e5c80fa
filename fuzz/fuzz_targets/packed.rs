//! The block chunk codec: arbitrary bytes decode or fail without panicking; arbitrary samples
//! (as raw 16-byte records) round-trip bit for bit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_model::Sample;
use vigil_tsdb::packed;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let _ = packed::decode_into(data, i64::MIN, i64::MAX, &mut out);
    // Windows too: a damaged chunk must fail cleanly whatever part of it is asked for.
    if data.len() > 16 {
        let lo = i64::from_le_bytes(data[..8].try_into().unwrap());
        let hi = i64::from_le_bytes(data[8..16].try_into().unwrap());
        let _ = packed::decode_into(&data[16..], lo.min(hi), lo.max(hi), &mut out);
    }

    // Samples from the input: strictly increasing timestamps, any value bits.
    let mut t = i64::MIN / 2;
    let samples: Vec<Sample> = data
        .chunks_exact(10)
        .map(|c| {
            t = t.saturating_add(1 + u16::from_le_bytes([c[0], c[1]]) as i64);
            Sample {
                t,
                v: f64::from_bits(u64::from_le_bytes(c[2..10].try_into().unwrap())),
            }
        })
        .collect();
    if samples.is_empty() {
        return;
    }
    let enc = packed::encode(&samples);
    let mut back = Vec::new();
    packed::decode_into(&enc, i64::MIN, i64::MAX, &mut back).expect("own chunk decodes");
    assert_eq!(back.len(), samples.len());
    for (a, b) in samples.iter().zip(&back) {
        assert_eq!((a.t, a.v.to_bits()), (b.t, b.v.to_bits()));
    }
});
