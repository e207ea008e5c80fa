//! Prometheus's native histogram chunks (`EncHistogram` = 2, `EncFloatHistogram` = 3), decoded
//! into float histograms: as its blocks store them and its remote read streams them.
//!
//! Layout (from Prometheus's `tsdb/chunkenc`, in our words): the sample count (u16 BE), a flags
//! byte whose top two bits are the counter-reset header, then a bit stream (most significant
//! bit first): the zero threshold (one byte, or 255 and the float), the schema, the positive
//! and negative spans (each length before offset), custom bounds for schema -53, then the
//! samples. Integer chunks hold counts as delta-of-delta varbit integers and bucket counts as
//! in-histogram deltas; float chunks hold every field XOR-coded against its previous value.

use vigil_model::FloatHistogram;
use vigil_model::histogram::{CUSTOM_BUCKETS_SCHEMA, CounterResetHint, Span};
use vigil_model::is_stale_nan;

/// `chunkenc.EncHistogram`.
pub const ENC_HISTOGRAM: u8 = 2;
/// `chunkenc.EncFloatHistogram`.
pub const ENC_FLOAT_HISTOGRAM: u8 = 3;

/// Values (bucket counts, spans, bounds) one chunk may decode into, all samples together.
const MAX_DECODED_VALUES: usize = 1 << 22;

/// Why a chunk could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk encoding {0} is not a native histogram encoding this build reads")]
    Encoding(u8),
    #[error("histogram chunk cut short ({0})")]
    Short(&'static str),
    #[error("histogram chunk holds an invalid {0}")]
    Invalid(&'static str),
}

type R<T> = Result<T, ChunkError>;

struct Bits<'a> {
    b: &'a [u8],
    /// Next bit to read, counted from the start of `b`.
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> R<bool> {
        let byte = *self
            .b
            .get(self.pos / 8)
            .ok_or(ChunkError::Short("bit stream"))?;
        let v = byte >> (7 - self.pos % 8) & 1 == 1;
        self.pos += 1;
        Ok(v)
    }

    fn bits(&mut self, n: u32) -> R<u64> {
        let mut v = 0u64;
        for _ in 0..n {
            v = v << 1 | self.bit()? as u64;
        }
        Ok(v)
    }

    /// The width a varbit prefix (up to eight bits, ended by a 0) announces.
    fn varbit_width(&mut self) -> R<u32> {
        let mut ones = 0;
        while ones < 8 && self.bit()? {
            ones += 1;
        }
        Ok([0, 3, 6, 9, 12, 18, 25, 56, 64][ones])
    }

    fn varbit_int(&mut self) -> R<i64> {
        let w = self.varbit_width()?;
        if w == 0 {
            return Ok(0);
        }
        let v = self.bits(w)?;
        if w == 64 {
            return Ok(v as i64);
        }
        // Two's complement in `w` bits, with +2^(w-1) representable (Prometheus's rule).
        let half = 1u64 << (w - 1);
        Ok(if v > half {
            v as i64 - (1i64 << w)
        } else {
            v as i64
        })
    }

    fn varbit_uint(&mut self) -> R<u64> {
        let w = self.varbit_width()?;
        if w == 0 { Ok(0) } else { self.bits(w) }
    }

    fn f64(&mut self) -> R<f64> {
        Ok(f64::from_bits(self.bits(64)?))
    }
}

/// One XOR-coded float field and its window.
#[derive(Default, Clone, Copy)]
struct Xor {
    bits: u64,
    leading: u32,
    trailing: u32,
}

impl Xor {
    fn start(v: f64) -> Xor {
        Xor {
            bits: v.to_bits(),
            ..Default::default()
        }
    }

    fn next(&mut self, r: &mut Bits<'_>) -> R<f64> {
        if r.bit()? {
            if r.bit()? {
                self.leading = r.bits(5)? as u32;
                let mut sig = r.bits(6)? as u32;
                if sig == 0 {
                    sig = 64;
                }
                self.trailing = 64u32
                    .checked_sub(self.leading + sig)
                    .ok_or(ChunkError::Invalid("XOR window"))?;
            }
            let sig = 64 - self.leading - self.trailing;
            let d = r.bits(sig)?;
            self.bits ^= d.checked_shl(self.trailing).unwrap_or(0);
        }
        Ok(f64::from_bits(self.bits))
    }
}

fn spans(r: &mut Bits<'_>) -> R<Vec<Span>> {
    let n = r.varbit_uint()?;
    if n > 1 << 16 {
        return Err(ChunkError::Invalid("span count"));
    }
    (0..n)
        .map(|_| {
            let length = r.varbit_uint()?;
            let offset = r.varbit_int()?;
            Ok(Span {
                length: u32::try_from(length).map_err(|_| ChunkError::Invalid("span length"))?,
                offset: i32::try_from(offset).map_err(|_| ChunkError::Invalid("span offset"))?,
            })
        })
        .collect()
}

fn bucket_count(s: &[Span]) -> R<usize> {
    let n: u64 = s.iter().map(|x| x.length as u64).sum();
    // A histogram of more buckets than this is damage, not data (and no allocation of it).
    if n > 1 << 16 {
        return Err(ChunkError::Invalid("bucket count"));
    }
    Ok(n as usize)
}

/// Every sample of a Prometheus histogram chunk (`encoding` 2 or 3), time-ordered, with the
/// counter-reset hints a Prometheus reader gives them. Stale markers come back as histograms
/// whose sum is the stale NaN.
pub fn decode(encoding: u8, data: &[u8]) -> Result<Vec<(i64, FloatHistogram)>, ChunkError> {
    if encoding != ENC_HISTOGRAM && encoding != ENC_FLOAT_HISTOGRAM {
        return Err(ChunkError::Encoding(encoding));
    }
    if data.len() < 3 {
        return Err(ChunkError::Short("header"));
    }
    let n = u16::from_be_bytes([data[0], data[1]]) as usize;
    let header = data[2] & 0xC0;
    let mut r = Bits {
        b: &data[3..],
        pos: 0,
    };
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Ok(out);
    }
    // The layout, once per chunk.
    let zt = match r.bits(8)? as u8 {
        0 => 0.0,
        255 => r.f64()?,
        b => 2f64.powi(b as i32 - 244),
    };
    let schema = i32::try_from(r.varbit_int()?).map_err(|_| ChunkError::Invalid("schema"))?;
    let pos_spans = spans(&mut r)?;
    let neg_spans = spans(&mut r)?;
    let mut custom_values = Vec::new();
    if schema == CUSTOM_BUCKETS_SCHEMA {
        let k = r.varbit_uint()?;
        if k > 1 << 16 {
            return Err(ChunkError::Invalid("custom bound count"));
        }
        for _ in 0..k {
            let u = r.varbit_uint()?;
            custom_values.push(if u == 0 {
                r.f64()?
            } else {
                (u - 1) as f64 / 1000.0
            });
        }
    }
    let (np, nn) = (bucket_count(&pos_spans)?, bucket_count(&neg_spans)?);
    let layout = FloatHistogram {
        schema,
        zero_threshold: zt,
        positive_spans: pos_spans.clone(),
        positive_buckets: vec![0.0; np],
        negative_spans: neg_spans.clone(),
        negative_buckets: vec![0.0; nn],
        custom_values: custom_values.clone(),
        ..Default::default()
    };
    if !vigil_model::histogram::valid_layout(&layout) {
        return Err(ChunkError::Invalid(
            "layout (schema, zero threshold or spans)",
        ));
    }
    // Every sample takes at least a bit, and each decoded sample holds the layout: a chunk
    // claiming more than its bytes can hold, or decoding to more than a few million values,
    // is damage (and must not become a huge allocation).
    let per_sample = pos_spans.len() + neg_spans.len() + custom_values.len() + np + nn + 8;
    if n > data.len() * 8 || n.saturating_mul(per_sample) > MAX_DECODED_VALUES {
        return Err(ChunkError::Invalid("sample count for its size"));
    }
    let hint = |k: usize| match (header, k) {
        (0xC0, _) => CounterResetHint::Gauge,
        (_, k) if k > 0 => CounterResetHint::NotCounterReset,
        (0x80, _) => CounterResetHint::CounterReset,
        _ => CounterResetHint::Unknown,
    };
    let make = |k: usize, count: f64, zero: f64, sum: f64, pos: Vec<f64>, neg: Vec<f64>| {
        if is_stale_nan(sum) {
            return FloatHistogram {
                sum,
                hint: hint(k),
                ..Default::default()
            };
        }
        FloatHistogram {
            hint: hint(k),
            schema,
            zero_threshold: zt,
            zero_count: zero,
            count,
            sum,
            positive_spans: pos_spans.clone(),
            positive_buckets: pos,
            negative_spans: neg_spans.clone(),
            negative_buckets: neg,
            custom_values: custom_values.clone(),
        }
    };
    let mut t = r.varbit_int()?;
    let mut t_delta = 0i64;
    if encoding == ENC_HISTOGRAM {
        // Counts as integers: delta-of-delta per field; buckets as in-histogram deltas.
        let mut count = r.varbit_uint()? as i64;
        let mut zero = r.varbit_uint()? as i64;
        let mut sum = Xor::start(r.f64()?);
        let mut bp = Vec::with_capacity(np);
        let mut bn = Vec::with_capacity(nn);
        let stale0 = is_stale_nan(f64::from_bits(sum.bits));
        if !stale0 {
            for _ in 0..np {
                bp.push(r.varbit_int()?);
            }
            for _ in 0..nn {
                bn.push(r.varbit_int()?);
            }
        }
        let absolute = vigil_model::histogram::absolute_from_deltas;
        let (mut c_delta, mut z_delta) = (0i64, 0i64);
        let (mut dp, mut dn) = (vec![0i64; np], vec![0i64; nn]);
        let mk = |k, count: i64, zero: i64, sum: f64, bp: &[i64], bn: &[i64]| {
            make(
                k,
                count as f64,
                zero as f64,
                sum,
                absolute(bp),
                absolute(bn),
            )
        };
        out.push((t, mk(0, count, zero, f64::from_bits(sum.bits), &bp, &bn)));
        if stale0 {
            bp = vec![0; np];
            bn = vec![0; nn];
        }
        for k in 1..n {
            t_delta = t_delta.wrapping_add(r.varbit_int()?);
            t = t.wrapping_add(t_delta);
            c_delta = c_delta.wrapping_add(r.varbit_int()?);
            count = count.wrapping_add(c_delta);
            z_delta = z_delta.wrapping_add(r.varbit_int()?);
            zero = zero.wrapping_add(z_delta);
            let s = sum.next(&mut r)?;
            if !is_stale_nan(s) {
                for (b, d) in bp.iter_mut().zip(dp.iter_mut()) {
                    *d = d.wrapping_add(r.varbit_int()?);
                    *b = b.wrapping_add(*d);
                }
                for (b, d) in bn.iter_mut().zip(dn.iter_mut()) {
                    *d = d.wrapping_add(r.varbit_int()?);
                    *b = b.wrapping_add(*d);
                }
            }
            out.push((t, mk(k, count, zero, s, &bp, &bn)));
        }
    } else {
        // Floats: raw first, then each field XOR-coded against its previous value.
        let mut count = Xor::start(r.f64()?);
        let mut zero = Xor::start(r.f64()?);
        let mut sum = Xor::start(r.f64()?);
        let stale0 = is_stale_nan(f64::from_bits(sum.bits));
        let mut bp = vec![Xor::default(); np];
        let mut bn = vec![Xor::default(); nn];
        if !stale0 {
            for x in bp.iter_mut().chain(bn.iter_mut()) {
                *x = Xor::start(r.f64()?);
            }
        }
        let vals = |v: &[Xor]| v.iter().map(|x| f64::from_bits(x.bits)).collect::<Vec<_>>();
        out.push((
            t,
            make(
                0,
                f64::from_bits(count.bits),
                f64::from_bits(zero.bits),
                f64::from_bits(sum.bits),
                vals(&bp),
                vals(&bn),
            ),
        ));
        for k in 1..n {
            t_delta = t_delta.wrapping_add(r.varbit_int()?);
            t = t.wrapping_add(t_delta);
            let c = count.next(&mut r)?;
            let z = zero.next(&mut r)?;
            let s = sum.next(&mut r)?;
            if !is_stale_nan(s) {
                for x in bp.iter_mut().chain(bn.iter_mut()) {
                    x.next(&mut r)?;
                }
            }
            out.push((t, make(k, c, z, s, vals(&bp), vals(&bn))));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    #[test]
    fn integer_chunk_decodes_counts_deltas_and_sums() {
        // Schema 0, zero threshold 2^-128, buckets 0 and 1: three samples (worked out from
        // Prometheus's encoding: t 1000/2000/3000, counts 3/5/7, sums 2.5/4.5/6.5, buckets
        // (1,2), (2,3), (3,4)).
        let c = hex("00 03 00 74 46 47 8f a2 64 00 40 00 00 00 00 00 08 c7 c7 d1 26 b1 2e 21 20");
        let got = decode(ENC_HISTOGRAM, &c).unwrap();
        let ts: Vec<i64> = got.iter().map(|x| x.0).collect();
        assert_eq!(ts, [1000, 2000, 3000]);
        let h = &got[2].1;
        assert_eq!((h.count, h.sum, h.zero_count), (7.0, 6.5, 0.0));
        assert_eq!(h.zero_threshold, 2f64.powi(-128));
        assert_eq!(h.positive(), vec![(0, 3.0), (1, 4.0)]);
        assert_eq!(got[0].1.positive(), vec![(0, 1.0), (1, 2.0)]);
        assert_eq!(got[0].1.hint, CounterResetHint::Unknown);
        assert_eq!(got[1].1.hint, CounterResetHint::NotCounterReset);
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let c = hex("00 03 00 74 46 47 8f a2 64 00 40 00 00 00 00 00 08 c7 c7 d1 26 b1 2e 21 20");
        for cut in 0..c.len() - 1 {
            let _ = decode(ENC_HISTOGRAM, &c[..cut]);
        }
        assert_eq!(decode(4, &c), Err(ChunkError::Encoding(4)));
        assert!(decode(ENC_HISTOGRAM, &c[..10]).is_err());
        // A span count past any real histogram's.
        assert_eq!(
            decode(
                ENC_HISTOGRAM,
                &hex("00 01 00 00 7f ff ff ff ff ff ff ff ff ff ff")
            ),
            Err(ChunkError::Invalid("span count"))
        );
    }

    #[test]
    fn layouts_prometheus_does_not_define_are_refused() {
        // Zero threshold byte 255 followed by NaN bits.
        let mut c = hex("00 01 00 ff 7f f8 00 00 00 00 00 01");
        c.extend([0u8; 8]);
        assert!(matches!(
            decode(ENC_HISTOGRAM, &c),
            Err(ChunkError::Invalid(_)) | Err(ChunkError::Short(_))
        ));
        // A sample count no chunk of this size can hold.
        let mut big = hex("00 01 00 74 46 47 8f a2 64 00 40 00 00 00 00 00 08 c4");
        big[0] = 0xff;
        big[1] = 0xff;
        assert_eq!(
            decode(ENC_HISTOGRAM, &big),
            Err(ChunkError::Invalid("sample count for its size"))
        );
    }
}
