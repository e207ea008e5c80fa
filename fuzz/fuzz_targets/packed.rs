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
    let records: Vec<(i64, f64)> = data
        .chunks_exact(10)
        .map(|c| {
            let gap = 1 + u16::from_le_bytes([c[0], c[1]]) as i64;
            (
                gap,
                f64::from_bits(u64::from_le_bytes(c[2..10].try_into().unwrap())),
            )
        })
        .collect();
    if records.is_empty() {
        return;
    }
    let series = |n: usize| -> Vec<Sample> {
        let mut t = i64::MIN / 2;
        records
            .iter()
            .cycle()
            .take(n)
            .map(|&(gap, v)| {
                t = t.saturating_add(gap);
                Sample { t, v }
            })
            .collect()
    };
    check(&series(records.len()));
    // Inputs are capped at a few KB (a few hundred samples), fewer than a seekable chunk
    // needs to have seek points: the same records cycled to 2,000 samples reach them.
    check(&series(2_000));
});

/// Own chunks of `samples` round-trip bit for bit, whole and in windows.
fn check(samples: &[Sample]) {
    for enc in [packed::encode(samples), packed::encode_unseekable(samples)] {
        let mut back = Vec::new();
        packed::decode_into(&enc, i64::MIN, i64::MAX, &mut back).expect("own chunk decodes");
        assert_eq!(back.len(), samples.len());
        for (a, b) in samples.iter().zip(&back) {
            assert_eq!((a.t, a.v.to_bits()), (b.t, b.v.to_bits()));
        }
        // Windows from the middle and near the end (from the seek point before them, in a
        // long seekable chunk) are what the whole chunk holds there.
        let n = samples.len();
        for (lo, hi) in [(n / 3, n * 2 / 3), (n * 9 / 10, n - 1), (n - 1, n - 1)] {
            let (lo, hi) = (samples[lo].t, samples[hi].t);
            let mut window = Vec::new();
            packed::decode_into(&enc, lo, hi, &mut window).expect("own chunk decodes");
            let want: Vec<(i64, u64)> = samples
                .iter()
                .filter(|s| s.t >= lo && s.t <= hi)
                .map(|s| (s.t, s.v.to_bits()))
                .collect();
            let got: Vec<(i64, u64)> = window.iter().map(|s| (s.t, s.v.to_bits())).collect();
            assert_eq!(got, want);
        }
    }
}
