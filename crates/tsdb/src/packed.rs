//! The chunk encoding of sealed blocks: denser than the head's XOR chunks because a block's
//! samples are all known when it is written, so the encoder can look at a whole chunk before
//! choosing how to store it.
//!
//! Most monitoring values are decimals with few digits (counters, byte counts, gauges rounded
//! by the exporter). The packed encoding scales a chunk's values by the smallest power of ten
//! that makes them all integers, takes the deltas (or deltas of deltas, whichever is smaller)
//! and bit-packs them at one width per chunk; timestamps are stored as bit-packed
//! deltas-of-deltas. Values that do not fit (NaN, stale markers, ±Inf, -0, too many digits)
//! and outliers wider than the chosen width are kept aside as exceptions, so one counter reset
//! does not widen a whole chunk. Values with no short decimal form are packed as differences of
//! their bit patterns when that is smaller. Every chunk is also encoded as XOR and the smaller one is
//! written, so a block is never larger than with XOR alone.
//!
//! Layout: one encoding byte, then
//! - `1` (XOR): the bytes of [`XorChunk::bytes`];
//! - `2` (packed): `n` uvarint, `t0` varint, [`n >= 2`: `t1 - t0` varint, [`n >= 3`: an int
//!   stream of the `n - 2` zig-zag timestamp deltas-of-deltas]], then the values: scale
//!   byte (`e` for values scaled by 10^e, `0xff` for the values' bit patterns), order byte
//!   (1 delta, 2 delta-of-delta, each zig-zagged; 3 and 4 the same offset by a base), the
//!   first scaled integer as varint, [orders 2 and 4, `n >= 2`: the first delta as varint],
//!   [orders 3 and 4: the base as varint], an int stream of the remaining differences, then
//!   the value exceptions: count, and per exception the gap from the
//!   previous exception's index (uvarint) and the value's 8 bytes, little-endian.
//! - `3` (seekable packed, block version 6 on): as `2`, plus seek points every
//!   [`SEEK_EVERY`] stream values: after the timestamp stream, when it is not all zeros, per
//!   seek point the sample's time off the first delta's grid and its delta off the first
//!   delta (varints); after the value stream, per seek point the sample's integer as the
//!   change since the previous point (varint), and for deltas of deltas its delta. Its
//!   mixed-radix streams say their group length, a divisor of [`SEEK_EVERY`], so a seek point
//!   starts a group. A window is decoded from the seek point before it: chunks can hold a
//!   day of samples and still be read from the middle at the cost of 240 values at most.
//! - an int stream: width byte `w`, exception count, per exception (index gap uvarint, value
//!   uvarint), then every value's low `w` bits back to back (exceptions as 0), byte-aligned;
//!   or `0xff`, `m` (uvarint) and the values as base-`m` digits, as many per group as fit 64
//!   bits, each group in the bits its largest number needs (values uniform over a range that
//!   is not a power of two then cost close to their entropy); or `0xfe`, `m`, the group
//!   length `k` (a byte) and the digits in groups of `k`.

use crate::chunk::{XorChunk, XorIter};
use crate::encoding::{Dec, put_uvarint, put_varint, unzigzag, uvarint_len, zigzag};
use vigil_model::Sample;

const ENC_XOR: u8 = 1;
const ENC_PACKED: u8 = 2;
/// A packed chunk with seek points: the chunks of a block's longer series, from version 6.
const ENC_SEEKABLE: u8 = 3;
/// Stream values between two seek points of a seekable chunk. A window is reached by
/// decoding at most this many values from the seek point before it, so chunks can be long
/// (a header spread over thousands of samples) and still cheap to read from the middle.
pub const SEEK_EVERY: usize = 240;
/// Largest decimal scale tried: 10^12 keeps 12 fractional digits exact.
const MAX_EXP: usize = 12;
const POW10: [f64; MAX_EXP + 1] = [
    1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
];
/// Integers beyond 2^53 are not all representable as f64: such values are exceptions.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;
/// Scale byte meaning "the integers are the values' IEEE 754 bit patterns".
const RAW_BITS: u8 = 0xff;
/// Most samples one chunk may hold (the XOR fallback's count is a `u16`).
pub const MAX_SAMPLES: usize = u16::MAX as usize;

/// Encode samples (strictly increasing timestamps) as the smaller of a seekable packed chunk
/// and XOR.
pub fn encode(samples: &[Sample]) -> Vec<u8> {
    encode_as(samples, true)
}

/// Encode samples as the smaller of a packed chunk without seek points and XOR: every float
/// chunk before block version 6, and in version 6 a series of up to 480 samples (one chunk,
/// where a seek point would save little and cost bytes).
pub fn encode_unseekable(samples: &[Sample]) -> Vec<u8> {
    encode_as(samples, false)
}

/// Whether an encoded chunk is the XOR fallback (read from its first sample on, however
/// long it is).
pub fn is_xor(b: &[u8]) -> bool {
    b.first() == Some(&ENC_XOR)
}

fn encode_as(samples: &[Sample], seekable: bool) -> Vec<u8> {
    assert!(
        samples.len() <= MAX_SAMPLES,
        "chunk of {} samples",
        samples.len()
    );
    let mut xor = XorChunk::new();
    for s in samples {
        xor.append(s.t, s.v);
    }
    let mut out = vec![ENC_XOR];
    out.extend_from_slice(&xor.bytes());
    if samples.is_empty() {
        return out;
    }
    let packed = encode_packed(samples, seekable);
    if packed.len() < out.len() {
        packed
    } else {
        out
    }
}

/// Decode a chunk written by [`encode`], appending its samples in `[mint, maxt]` to `out`.
/// `None` if the bytes are damaged.
pub fn decode_into(b: &[u8], mint: i64, maxt: i64, out: &mut Vec<Sample>) -> Option<()> {
    match *b.first()? {
        ENC_XOR => {
            out.extend(XorIter::from_bytes(&b[1..])?.filter(|s| s.t >= mint && s.t <= maxt));
            Some(())
        }
        enc @ (ENC_PACKED | ENC_SEEKABLE) => {
            let start = out.len();
            if decode_packed(&b[1..], mint, maxt, out, enc == ENC_SEEKABLE).is_none() {
                out.truncate(start);
                return None;
            }
            Some(())
        }
        _ => None,
    }
}

/// Smallest exponent `e <= MAX_EXP` with `v == round(v * 10^e) / 10^e` exactly.
fn decimal_exponent(v: f64) -> Option<usize> {
    if !v.is_finite() || (v == 0.0 && v.is_sign_negative()) {
        return None;
    }
    (0..=MAX_EXP).find(|&e| scaled(v, e).is_some())
}

/// `v` scaled by 10^e as an exact integer, if decoding gives back `v` bit for bit.
fn scaled(v: f64, e: usize) -> Option<i64> {
    let i = (v * POW10[e]).round();
    (i.abs() < MAX_EXACT && (i / POW10[e]).to_bits() == v.to_bits()).then_some(i as i64)
}

fn encode_packed(samples: &[Sample], seekable: bool) -> Vec<u8> {
    let n = samples.len();
    let mut out = vec![if seekable { ENC_SEEKABLE } else { ENC_PACKED }];
    put_uvarint(&mut out, n as u64);
    put_varint(&mut out, samples[0].t);
    if n >= 2 {
        put_varint(&mut out, samples[1].t.wrapping_sub(samples[0].t));
    }
    if n >= 3 {
        let dods: Vec<u64> = samples
            .windows(3)
            .map(|w| {
                let d1 = w[1].t.wrapping_sub(w[0].t);
                let d2 = w[2].t.wrapping_sub(w[1].t);
                zigzag(d2.wrapping_sub(d1))
            })
            .collect();
        let at = out.len();
        put_int_stream(&mut out, &dods, seekable);
        // Seek points for timestamps that are not evenly spaced (evenly spaced ones are
        // located arithmetically): after `p` deltas-of-deltas the decoder is at sample
        // `p + 1`; its time as the distance from the even grid of the first delta, and its
        // delta as the distance from the first delta. The reader's test for "evenly
        // spaced" is the stream's form, width 0 and no exceptions, so this one is too.
        if seekable && out[at..] != [0, 0] {
            let d1 = samples[1].t.wrapping_sub(samples[0].t);
            for p in (SEEK_EVERY..dods.len()).step_by(SEEK_EVERY) {
                let (t, prev) = (samples[p + 1].t, samples[p].t);
                let grid = samples[0].t.wrapping_add(d1.wrapping_mul(p as i64 + 1));
                put_varint(&mut out, t.wrapping_sub(grid));
                put_varint(&mut out, t.wrapping_sub(prev).wrapping_sub(d1));
            }
        }
    }

    // Values: one exponent for the chunk, the largest any representable value needs.
    let exps: Vec<Option<usize>> = samples.iter().map(|s| decimal_exponent(s.v)).collect();
    let e = exps.iter().flatten().copied().max().unwrap_or(0);
    let mut ints = Vec::with_capacity(n);
    let mut exceptions: Vec<(usize, u64)> = Vec::new();
    let mut prev = 0i64;
    for (i, s) in samples.iter().enumerate() {
        match exps[i].and_then(|_| scaled(s.v, e)) {
            Some(x) => {
                ints.push(x);
                prev = x;
            }
            None => {
                // Stand-in equal to its predecessor so the difference streams stay small.
                ints.push(prev);
                exceptions.push((i, s.v.to_bits()));
            }
        }
    }
    let decimal = values_section(e as u8, &ints, &exceptions, seekable);
    // Floats without a short decimal form: differences of their bit patterns are differences
    // in units in the last place, which for a slowly moving series of one sign and exponent
    // are narrower than Gorilla's XOR windows.
    let bits: Vec<i64> = samples.iter().map(|s| s.v.to_bits() as i64).collect();
    let raw = values_section(RAW_BITS, &bits, &[], seekable);
    out.extend_from_slice(if raw.len() < decimal.len() {
        &raw
    } else {
        &decimal
    });
    out
}

/// The value part of a packed chunk: scale byte, order, first value, differences, [seek
/// points,] exceptions.
fn values_section(scale: u8, ints: &[i64], exceptions: &[(usize, u64)], seekable: bool) -> Vec<u8> {
    let n = ints.len();
    let mut out = Vec::new();
    let deltas: Vec<i64> = std::iter::once(ints[0])
        .chain(ints.windows(2).map(|w| w[1].wrapping_sub(w[0])))
        .collect();
    let dods: Vec<i64> = deltas
        .get(1..)
        .unwrap_or(&[])
        .windows(2)
        .map(|w| w[1].wrapping_sub(w[0]))
        .collect();
    // Each difference stream either zig-zagged (small values of both signs, outliers such as
    // counter resets kept aside) or offset by its minimum (values all on one side: counter
    // increments 0..19 stay 0..19 instead of doubling). The cheapest of the four is written.
    let zz = |v: &[i64]| -> Vec<u64> { v.iter().map(|&d| zigzag(d)).collect() };
    let off = |v: &[i64]| -> (i64, Vec<u64>) {
        let min = v.iter().copied().min().unwrap_or(0);
        (min, v.iter().map(|&d| d.wrapping_sub(min) as u64).collect())
    };
    let (dmin, d_off) = off(&deltas[1..]);
    let (ddmin, dd_off) = off(&dods);
    let mut options: Vec<(u8, Option<i64>, Vec<u64>)> =
        vec![(1, None, zz(&deltas[1..])), (3, Some(dmin), d_off)];
    if n >= 3 {
        options.push((2, None, zz(&dods)));
        options.push((4, Some(ddmin), dd_off));
    }
    let (order, base, stream) = options
        .into_iter()
        .min_by_key(|(_, b, v)| stream_cost(v, seekable) + if b.is_some() { 32 } else { 0 })
        .expect("options");
    out.push(scale);
    out.push(order);
    put_varint(&mut out, ints[0]);
    if order == 2 || order == 4 {
        put_varint(&mut out, deltas[1]);
    }
    if let Some(b) = base {
        put_varint(&mut out, b);
    }
    put_int_stream(&mut out, &stream, seekable);
    if seekable {
        // After `p` differences the decoder is at sample `p` (orders 1 and 3) or `p + 1`
        // (orders 2 and 4, which also need that sample's delta): its value as the change
        // since the previous seek point (or the first value).
        let dod = order == 2 || order == 4;
        let mut prev = ints[0];
        for p in (SEEK_EVERY..stream.len()).step_by(SEEK_EVERY) {
            let at = if dod { p + 1 } else { p };
            put_varint(&mut out, ints[at].wrapping_sub(prev));
            prev = ints[at];
            if dod {
                put_varint(&mut out, deltas[at]);
            }
        }
    }
    put_uvarint(&mut out, exceptions.len() as u64);
    let mut last = 0;
    for &(i, bits) in exceptions {
        put_uvarint(&mut out, (i - last) as u64);
        out.extend_from_slice(&bits.to_le_bytes());
        last = i;
    }
    out
}

fn bit_len(v: u64) -> usize {
    64 - v.leading_zeros() as usize
}

/// The width for a stream and its cost in bits: every value at `w` bits, plus the values
/// wider than `w` kept aside (about a byte of index gap plus their varint).
fn best_width(vals: &[u64]) -> (usize, usize) {
    let mut bytes_above = [0usize; 65];
    for &v in vals {
        bytes_above[bit_len(v)] += 1 + uvarint_len(v) as usize;
    }
    let mut best = (64, usize::MAX);
    // Walk widths from 64 down, accumulating what would become exceptions.
    let mut exc_bits = 0usize;
    for w in (0..=64).rev() {
        let cost = vals.len() * w + exc_bits;
        if cost < best.1 {
            best = (w, cost);
        }
        exc_bits += 8 * bytes_above[w];
    }
    best
}

/// Width byte marking a mixed-radix stream (values packed as base-`m` digits) in groups of
/// as many digits as fit 64 bits.
const RADIX: u8 = 0xff;
/// Width byte marking a mixed-radix stream whose group length follows `m` (seekable chunks:
/// a length dividing [`SEEK_EVERY`], so seek points fall on group starts, chosen for the
/// fewest bits: for base 201 six digits in 46 bits waste less than eight in 62).
const RADIX_GROUPED: u8 = 0xfe;

/// Values per group for base `m` (as many digits as fit a `u64`) and the bits of a group of
/// `k` digits.
fn radix_group(m: u64) -> usize {
    let mut g = 0;
    let mut p: u128 = 1;
    while p * m as u128 <= u64::MAX as u128 + 1 {
        p *= m as u128;
        g += 1;
    }
    g
}

fn radix_bits(m: u64, k: usize) -> usize {
    let mut p: u128 = 1;
    for _ in 0..k {
        p *= m as u128;
    }
    bit_len((p - 1) as u64)
}

/// Bits of `n` values in base `m` in groups of `k`.
fn radix_stream_bits(m: u64, k: usize, n: usize) -> usize {
    let (full, rest) = (n / k, n % k);
    full * radix_bits(m, k) + if rest > 0 { radix_bits(m, rest) } else { 0 }
}

/// Bits of the stream packed in base `max + 1`, with its group length: for values uniform
/// over a range that is not a power of two (counter increments 0..19, steps of -1.00..1.00)
/// this approaches their entropy, where a fixed bit width rounds every value up. Seekable
/// streams try every group length dividing [`SEEK_EVERY`] (one byte more to say which).
fn radix_cost(vals: &[u64], seekable: bool) -> Option<(u64, usize, usize)> {
    let m = vals.iter().copied().max()?.checked_add(1)?;
    if m < 3 || m.is_power_of_two() {
        return None;
    }
    let g = radix_group(m);
    if g < 2 {
        return None;
    }
    let header = 8 * uvarint_len(m) as usize;
    if !seekable {
        return Some((m, g, radix_stream_bits(m, g, vals.len()) + header));
    }
    // Longest groups first: of equal costs (base 20 takes 13 bits for 3 digits, 26 for 6
    // and 52 for 12) the longest is the fastest to decode (fewer reads, two digit chains).
    (2..=g)
        .rev()
        .filter(|k| SEEK_EVERY.is_multiple_of(*k))
        .map(|k| (m, k, radix_stream_bits(m, k, vals.len()) + header + 8))
        .min_by_key(|c| c.2)
}

fn stream_cost(vals: &[u64], seekable: bool) -> usize {
    let fixed = best_width(vals).1;
    radix_cost(vals, seekable).map_or(fixed, |(_, _, c)| c.min(fixed))
}

fn put_int_stream(out: &mut Vec<u8>, vals: &[u64], seekable: bool) {
    let (w, fixed) = best_width(vals);
    if let Some((m, k, cost)) = radix_cost(vals, seekable)
        && cost + 8 < fixed
    {
        put_radix_stream(out, vals, m, seekable.then_some(k));
        return;
    }
    out.push(w as u8);
    let limit = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
    let exc: Vec<(usize, u64)> = vals
        .iter()
        .enumerate()
        .filter(|(_, v)| **v > limit)
        .map(|(i, v)| (i, *v))
        .collect();
    put_uvarint(out, exc.len() as u64);
    let mut last = 0;
    for &(i, v) in &exc {
        put_uvarint(out, (i - last) as u64);
        put_uvarint(out, v);
        last = i;
    }
    if w == 0 {
        return;
    }
    // Little-endian bit packing into a 64-bit accumulator.
    let mut acc: u128 = 0;
    let mut nbits = 0usize;
    for &v in vals {
        let v = if v > limit { 0 } else { v };
        acc |= (v as u128) << nbits;
        nbits += w;
        while nbits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            nbits -= 8;
        }
    }
    if nbits > 0 {
        out.push(acc as u8);
    }
}

/// Marker, `m`, [the group length `k` (a byte) after [`RADIX_GROUPED`],] then groups of
/// base-`m` digits (least significant first), each group's number in `radix_bits(m, len)`
/// bits, little-endian bit packing.
fn put_radix_stream(out: &mut Vec<u8>, vals: &[u64], m: u64, k: Option<usize>) {
    out.push(if k.is_some() { RADIX_GROUPED } else { RADIX });
    put_uvarint(out, m);
    if let Some(k) = k {
        out.push(k as u8);
    }
    let g = k.unwrap_or_else(|| radix_group(m));
    let mut acc: u128 = 0;
    let mut nbits = 0usize;
    for group in vals.chunks(g) {
        let mut n: u64 = 0;
        for &v in group.iter().rev() {
            n = n * m + v;
        }
        let bits = radix_bits(m, group.len());
        acc |= (n as u128) << nbits;
        nbits += bits;
        while nbits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            nbits -= 8;
        }
    }
    if nbits > 0 {
        out.push(acc as u8);
    }
}

/// The packed format's reader: the shared decoder, whether the chunk is seekable (its radix
/// streams are all [`RADIX_GROUPED`], an unseekable one's all [`RADIX`]), and the stream
/// openers below.
struct Cur<'a>(Dec<'a>, bool);

impl<'a> Cur<'a> {
    fn byte(&mut self) -> Option<u8> {
        self.0.u8()
    }
    fn uvarint(&mut self) -> Option<u64> {
        self.0.uvarint()
    }
    fn varint(&mut self) -> Option<i64> {
        self.0.varint()
    }

    /// Open an int stream of `n` values; the cursor moves past it.
    fn int_stream(&mut self, n: usize) -> Option<IntStream<'a>> {
        let w = self.byte()?;
        // Each chunk tag has its own radix form, so a tag-2 chunk reads as it always did.
        if (w == RADIX && self.1) || (w == RADIX_GROUPED && !self.1) {
            return None;
        }
        if w == RADIX || w == RADIX_GROUPED {
            let m = self.uvarint()?;
            if m < 3 || m.is_power_of_two() {
                return None;
            }
            let most = radix_group(m);
            let g = match w {
                RADIX => most,
                _ => self.byte()? as usize,
            };
            if !(2..=64).contains(&g) || g > most {
                return None;
            }
            // A group length that does not divide the seek interval could not be seeked:
            // refused at once, whatever the window.
            if w == RADIX_GROUPED && !SEEK_EVERY.is_multiple_of(g) {
                return None;
            }
            let (full, rest) = (n / g, n % g);
            let full_bits = radix_bits(m, g);
            let bits = full * full_bits + if rest > 0 { radix_bits(m, rest) } else { 0 };
            let len = bits.div_ceil(8);
            let data = self.0.bytes(len)?;
            return Some(IntStream {
                data,
                w: 0,
                mask: 0,
                bit: 0,
                i: 0,
                exc: Vec::new(),
                exc_at: 0,
                next_exc: usize::MAX,
                radix: Some(Radix {
                    m,
                    inv: u64::MAX / m.max(1),
                    half_pow: m.pow((g / 2) as u32),
                    half_inv: u64::MAX / m.pow((g / 2) as u32),
                    grouped: w == RADIX_GROUPED,
                    full_bits,
                    g,
                    n,
                    digits: [0; 64],
                    have: 0,
                    at: 0,
                }),
            });
        }
        let w = w as u32;
        if w > 64 {
            return None;
        }
        let n_exc = self.uvarint()? as usize;
        if n_exc > n {
            return None;
        }
        // Exceptions are rare: no allocation unless there are some.
        let mut exc = Vec::new();
        let mut idx = 0usize;
        for _ in 0..n_exc {
            idx = idx.checked_add(self.uvarint()? as usize)?;
            exc.push((idx, self.uvarint()?));
        }
        let len = (n * w as usize).div_ceil(8);
        let data = self.0.bytes(len)?;
        let next_exc = exc.first().map_or(usize::MAX, |e| e.0);
        Some(IntStream {
            data,
            w,
            mask: if w == 64 { u64::MAX } else { (1u64 << w) - 1 },
            bit: 0,
            i: 0,
            exc,
            exc_at: 0,
            next_exc,
            radix: None,
        })
    }
}

/// Decoding state of a mixed-radix stream: the current group's digits.
struct Radix {
    m: u64,
    /// `u64::MAX / m`: digits are split off by multiplying with it (a hardware division per
    /// digit made mixed-radix chunks the slowest to decode).
    inv: u64,
    /// `m^(g/2)` and its `u64::MAX / ..`: a full group is first split in two halves whose
    /// digits are then split off in two independent chains (twice the throughput of one).
    half_pow: u64,
    half_inv: u64,
    /// `radix_bits(m, g)`: a full group's width, known once rather than per group.
    full_bits: usize,
    g: usize,
    n: usize,
    digits: [u64; 64],
    have: usize,
    at: usize,
    /// Whether the group length was written (a seekable chunk's stream).
    grouped: bool,
}

/// Sequential reader of a bit-packed int stream.
struct IntStream<'a> {
    data: &'a [u8],
    w: u32,
    mask: u64,
    bit: usize,
    i: usize,
    exc: Vec<(usize, u64)>,
    exc_at: usize,
    next_exc: usize,
    radix: Option<Radix>,
}

impl IntStream<'_> {
    /// Move to value `p` (a seek point: a multiple of [`SEEK_EVERY`], which a seekable
    /// chunk's group length divides). `None` if the stream cannot start there.
    fn seek(&mut self, p: usize) -> Option<()> {
        match &mut self.radix {
            Some(r) => {
                if !r.grouped || !p.is_multiple_of(r.g) || p > r.n {
                    return None;
                }
                self.bit = (p / r.g) * radix_bits(r.m, r.g);
                r.have = 0;
                r.at = 0;
            }
            None => {
                self.bit = p.checked_mul(self.w as usize)?;
                self.exc_at = self.exc.partition_point(|e| e.0 < p);
                self.next_exc = self.exc.get(self.exc_at).map_or(usize::MAX, |e| e.0);
            }
        }
        self.i = p;
        Some(())
    }

    /// Whether every value of the stream is 0 (width 0, no exceptions).
    fn all_zero(&self) -> bool {
        self.radix.is_none() && self.w == 0 && self.exc.is_empty()
    }

    /// Bits at the current position (up to 64), little-endian.
    #[inline(always)]
    fn take_bits(&mut self, bits: usize) -> u64 {
        let at = self.bit / 8;
        // Sixteen bytes read at once where the data has them (all but a stream's end): a
        // copy of a variable length was a `memcpy` call per group.
        let word = if at + 16 <= self.data.len() {
            u128::from_le_bytes(self.data[at..at + 16].try_into().unwrap_or([0; 16]))
        } else {
            let mut buf = [0u8; 16];
            let avail = &self.data[at.min(self.data.len())..(at + 16).min(self.data.len())];
            buf[..avail.len()].copy_from_slice(avail);
            u128::from_le_bytes(buf)
        } >> (self.bit % 8);
        self.bit += bits;
        let mask = if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        word as u64 & mask
    }

    /// The next value. The caller reads at most the stream's `n` values.
    #[inline(always)]
    fn next(&mut self) -> u64 {
        if self.radix.is_some() {
            return self.next_radix();
        }
        let at = self.bit / 8;
        let v = if self.w == 0 {
            0
        } else if at + 16 <= self.data.len() {
            let word = u128::from_le_bytes(self.data[at..at + 16].try_into().unwrap_or([0; 16]));
            (word >> (self.bit % 8)) as u64 & self.mask
        } else {
            let mut buf = [0u8; 16];
            let avail = &self.data[at.min(self.data.len())..(at + 16).min(self.data.len())];
            buf[..avail.len()].copy_from_slice(avail);
            (u128::from_le_bytes(buf) >> (self.bit % 8)) as u64 & self.mask
        };
        self.bit += self.w as usize;
        let i = self.i;
        self.i += 1;
        if i == self.next_exc {
            let x = self.exc[self.exc_at].1;
            self.exc_at += 1;
            self.next_exc = self.exc.get(self.exc_at).map_or(usize::MAX, |e| e.0);
            x
        } else {
            v
        }
    }
}

/// `(n / m, n % m)` from `inv = u64::MAX / m`: the estimate `n * inv >> 64` is at most two
/// below the quotient, and the remainder check corrects it.
#[inline(always)]
fn divrem(n: u64, m: u64, inv: u64) -> (u64, u64) {
    let mut q = ((n as u128 * inv as u128) >> 64) as u64;
    let mut r = n - q * m;
    // At most two below, so at most two corrections, each made without a branch: whether one
    // is needed depends on the digits, and a loop's mispredicted exits were much of the
    // decoding time.
    for _ in 0..2 {
        let c = (r >= m) as u64;
        q += c;
        r -= c * m;
    }
    (q, r)
}

impl IntStream<'_> {
    /// The next digit: inlined into the decoding loops, the group's unpacking not.
    #[inline(always)]
    fn next_radix(&mut self) -> u64 {
        if self.radix.as_ref().is_some_and(|r| r.at == r.have) {
            self.unpack_group();
        }
        self.i += 1;
        let r = self.radix.as_mut().expect("radix stream");
        let v = r.digits[r.at];
        r.at += 1;
        v
    }

    /// Split the next group's digits off.
    #[inline(never)]
    fn unpack_group(&mut self) {
        let r = self.radix.as_ref().expect("radix stream");
        let (m, inv, g, n, i) = (r.m, r.inv, r.g, r.n, self.i);
        let k = g.min(n.saturating_sub(i)).max(1);
        let bits = if k == g {
            r.full_bits
        } else {
            radix_bits(m, k)
        };
        let mut num = self.take_bits(bits);
        let r = self.radix.as_mut().expect("radix stream");
        if k == g && g >= 4 {
            let h = g / 2;
            let (mut hi, mut lo) = divrem(num, r.half_pow, r.half_inv);
            let (low, high) = r.digits.split_at_mut(h);
            for (dl, dh) in low.iter_mut().zip(high.iter_mut()) {
                (lo, *dl) = divrem(lo, m, inv);
                (hi, *dh) = divrem(hi, m, inv);
            }
            if g % 2 == 1 {
                high[h] = hi; // the top digit: what is left of the upper half
            }
        } else {
            for d in r.digits.iter_mut().take(k) {
                (num, *d) = divrem(num, m, inv);
            }
        }
        r.have = k;
        r.at = 0;
    }
}

#[cfg(test)]
thread_local! {
    /// Where the last decode started its timestamps and its values (sample indexes; past 2
    /// only from a seek point), so tests can tell that a seek happened.
    static STARTED_AT: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

/// Decode the samples of a packed chunk that fall in `[mint, maxt]`. Only the part of the
/// chunk up to the last wanted sample is unpacked, and only wanted samples are stored: an
/// instant query reading the last minutes of a chunk pays for additions, not for a copy of the
/// whole chunk.
fn decode_packed(
    b: &[u8],
    mint: i64,
    maxt: i64,
    out: &mut Vec<Sample>,
    seekable: bool,
) -> Option<()> {
    #[cfg(test)]
    STARTED_AT.with(|s| s.set((0, 0)));
    let mut c = Cur(Dec::new(b, 0), seekable);
    let n = c.uvarint()? as usize;
    // Width-0 streams make counts independent of the byte length; cap what damage can ask
    // us to allocate.
    if n == 0 || n > MAX_SAMPLES {
        return None;
    }
    let start = out.len();
    // Timestamps: `lo` is the first index at or after mint, `hi` one past the last <= maxt.
    let t0 = c.varint()?;
    let (mut lo, mut hi) = (usize::MAX, 0usize);
    // Kept samples must be one run of indexes (timestamps increase); damage that breaks this
    // is reported rather than indexed past.
    let mut damaged = false;
    let mut keep = |i: usize, t: i64, out: &mut Vec<Sample>| {
        if t >= mint && t <= maxt {
            if hi != 0 && hi != i {
                damaged = true;
            }
            lo = lo.min(i);
            hi = i + 1;
            out.push(Sample { t, v: 0.0 });
        }
    };
    keep(0, t0, out);
    if n >= 2 {
        let mut d = c.varint()?;
        let mut t = t0.wrapping_add(d);
        keep(1, t, out);
        if n >= 3 {
            let mut ts = c.int_stream(n - 2)?;
            let last = (n as i64 - 1)
                .checked_mul(d)
                .and_then(|x| x.checked_add(t0));
            if ts.all_zero() && d > 0 && last.is_some() {
                // Evenly spaced (every delta-of-delta 0): the wanted indexes are computed, not
                // searched, and only they are visited.
                let (t0w, dw) = (t0 as i128, d as i128);
                let from = ((mint as i128 - t0w).max(0) + dw - 1) / dw;
                let to = if (maxt as i128) < t0w {
                    0
                } else {
                    (maxt as i128 - t0w) / dw + 1
                };
                // Every index of `a..b` is wanted: stored in one `extend` (sized once), as
                // `keep` would store them one by one.
                let b = to.min(n as i128) as usize;
                let a = from.max(2).min(b as i128) as usize;
                if a < b {
                    if hi != 0 && hi != a {
                        damaged = true;
                    }
                    lo = lo.min(a);
                    hi = b;
                    out.extend((a..b).map(|i| Sample {
                        t: t0 + i as i64 * d,
                        v: 0.0,
                    }));
                }
            } else {
                let mut from = 2;
                // (A stream of zeros has no table: its times are on the grid.)
                if seekable && !ts.all_zero() {
                    // The last seek point before `mint`: the samples up to it are not wanted
                    // (times increase), so decoding starts there. The whole table is read to
                    // move the cursor past it.
                    let d1 = d;
                    for p in (SEEK_EVERY..n - 2).step_by(SEEK_EVERY) {
                        let grid = t0.wrapping_add(d1.wrapping_mul(p as i64 + 1));
                        let tp = grid.wrapping_add(c.varint()?);
                        let dp = d1.wrapping_add(c.varint()?);
                        if tp < mint {
                            (t, d, from) = (tp, dp, p + 2);
                        }
                    }
                    if from > 2 {
                        ts.seek(from - 2)?;
                    }
                }
                #[cfg(test)]
                STARTED_AT.with(|s| s.set((from, 0)));
                for i in from..n {
                    if t > maxt {
                        break; // the stream's end is known: the cursor is already past it
                    }
                    d = d.wrapping_add(unzigzag(ts.next()));
                    t = t.wrapping_add(d);
                    keep(i, t, out);
                }
            }
        }
    }
    if damaged || out.len() - start != hi.saturating_sub(lo.min(hi)) {
        return None;
    }
    if hi == 0 {
        return Some(()); // nothing in the window
    }
    let e = c.byte()? as usize;
    let order = c.byte()?;
    if (e > MAX_EXP && e != RAW_BITS as usize) || !(1..=4).contains(&order) {
        return None;
    }
    let raw = e == RAW_BITS as usize;
    let scale = if raw { 1.0 } else { POW10[e] };
    let conv = |i: i64| {
        if raw {
            f64::from_bits(i as u64)
        } else if e == 0 {
            i as f64 // integers: no division (x / 1.0 is x)
        } else {
            i as f64 / scale
        }
    };
    let first = c.varint()?;
    let dod = order == 2 || order == 4;
    let mut d = if dod && n >= 2 { c.varint()? } else { 0 };
    let base = if order >= 3 { Some(c.varint()?) } else { None };
    let un = |u: u64| match base {
        Some(b) => b.wrapping_add(u as i64),
        None => unzigzag(u),
    };
    let vals = &mut out[start..];
    // Values before `lo` are only accumulated, those in `lo..hi` stored: two loops rather than
    // a bounds test per value (this loop is most of a range query's decoding).
    let mut x = first;
    if lo == 0 {
        vals[0].v = conv(x);
    }
    // A seekable chunk's seek points follow its value stream: the last one before `lo` is
    // where accumulating starts. `(p, x, d)`: values consumed, the sample's value and delta.
    let seek_table = |c: &mut Cur, len: usize| -> Option<Option<(usize, i64, i64)>> {
        let mut best = None;
        if seekable {
            let mut at = first;
            for p in (SEEK_EVERY..len).step_by(SEEK_EVERY) {
                at = at.wrapping_add(c.varint()?);
                let dp = if dod { c.varint()? } else { 0 };
                // The sample a seek point stands at must come before `lo`.
                if p + usize::from(dod) < lo {
                    best = Some((p, at, dp));
                }
            }
        }
        Some(best)
    };
    if !dod {
        let mut ds = c.int_stream(n - 1)?;
        let mut from = 1;
        if let Some((p, xp, _)) = seek_table(&mut c, n - 1)? {
            ds.seek(p)?;
            (x, from) = (xp, p + 1);
        }
        #[cfg(test)]
        STARTED_AT.with(|s| s.set((s.get().0, from)));
        for _ in from..lo.max(1) {
            x = x.wrapping_add(un(ds.next()));
        }
        for slot in vals.iter_mut().skip(if lo == 0 { 1 } else { 0 }) {
            x = x.wrapping_add(un(ds.next()));
            slot.v = conv(x);
        }
    } else if n >= 2 {
        x = x.wrapping_add(d);
        if lo <= 1 && hi > 1 {
            vals[1 - lo].v = conv(x);
        }
        let mut ds = c.int_stream(n - 2)?;
        let mut from = 2;
        if let Some((p, xp, dp)) = seek_table(&mut c, n - 2)? {
            ds.seek(p)?;
            (x, d, from) = (xp, dp, p + 2);
        }
        #[cfg(test)]
        STARTED_AT.with(|s| s.set((s.get().0, from)));
        for _ in from..lo.max(2) {
            d = d.wrapping_add(un(ds.next()));
            x = x.wrapping_add(d);
        }
        for slot in vals.iter_mut().skip(2usize.saturating_sub(lo)) {
            d = d.wrapping_add(un(ds.next()));
            x = x.wrapping_add(d);
            slot.v = conv(x);
        }
    }
    let n_exc = c.uvarint()? as usize;
    let mut idx = 0usize;
    for _ in 0..n_exc {
        idx = idx.checked_add(c.uvarint()? as usize)?;
        let bits = c.0.bytes(8)?;
        if idx >= n {
            return None;
        }
        if idx >= lo && idx < hi {
            vals[idx - lo].v = f64::from_bits(u64::from_le_bytes(bits.try_into().ok()?));
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_division_is_exact() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for m in [
            1u64,
            2,
            3,
            7,
            10,
            100,
            201,
            1000,
            65_537,
            1 << 31,
            u32::MAX as u64 + 12_345,
            u64::MAX / 3,
            u64::MAX,
        ] {
            for n in [0u64, 1, m - 1, m, m.wrapping_add(1), u64::MAX, u64::MAX - 1] {
                assert_eq!(divrem(n, m, u64::MAX / m), (n / m, n % m), "{n} / {m}");
            }
            for _ in 0..10_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                assert_eq!(divrem(x, m, u64::MAX / m), (x / m, x % m), "{x} / {m}");
            }
        }
    }
    #[test]
    fn radix_streams_round_trip_for_odd_and_even_groups() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        // Groups of 40, 27 (odd), 22, 19, 14, 9, 4 and 2 digits.
        for m in [3u64, 5, 7, 10, 20, 100, 65_537, 3_000_000_019] {
            for n in [1usize, 2, 13, 100, 250, 481, 500] {
                let vals: Vec<u64> = (0..n)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x % m
                    })
                    .collect();
                let want_m = vals.iter().copied().max().unwrap_or(0) + 1;
                if want_m < 3 || want_m.is_power_of_two() {
                    continue; // not a valid radix stream: the encoder never writes one
                }
                let mut b = Vec::new();
                put_radix_stream(&mut b, &vals, want_m, None);
                let mut c = Cur(Dec::new(&b, 0), false);
                let mut s = c.int_stream(n).expect("stream opens");
                let got: Vec<u64> = (0..n).map(|_| s.next()).collect();
                assert_eq!(got, vals, "base {m}, {n} values");
                assert!(Cur(Dec::new(&b, 0), true).int_stream(n).is_none());
                // Written group lengths (each dividing SEEK_EVERY), read from the start and
                // from a seek point.
                let most = radix_group(want_m);
                for k in (2..=most).filter(|k| SEEK_EVERY.is_multiple_of(*k)) {
                    let mut b = Vec::new();
                    put_radix_stream(&mut b, &vals, want_m, Some(k));
                    let mut c = Cur(Dec::new(&b, 0), true);
                    let mut s = c.int_stream(n).expect("stream opens");
                    let got: Vec<u64> = (0..n).map(|_| s.next()).collect();
                    assert_eq!(got, vals, "base {m}, groups of {k}, {n} values");
                    assert!(Cur(Dec::new(&b, 0), false).int_stream(n).is_none());
                    let mut c = Cur(Dec::new(&b, 0), true);
                    let mut s = c.int_stream(n).expect("stream opens");
                    if n > SEEK_EVERY {
                        s.seek(SEEK_EVERY).expect("a seek point");
                        let got: Vec<u64> = (SEEK_EVERY..n).map(|_| s.next()).collect();
                        assert_eq!(
                            got,
                            vals[SEEK_EVERY..],
                            "base {m}, k {k}, from the seek point"
                        );
                    }
                    // A start that is not a group's is refused, never misread.
                    assert!(s.seek(k + 1).is_none());
                }
            }
        }
    }

    use vigil_model::sample::STALE_NAN;

    fn round_trip(samples: &[Sample]) -> usize {
        let b = encode(samples);
        let mut out = Vec::new();
        decode_into(&b, i64::MIN, i64::MAX, &mut out).expect("decodes");
        assert_eq!(out.len(), samples.len());
        for (a, b) in samples.iter().zip(&out) {
            assert_eq!(a.t, b.t);
            assert_eq!(
                a.v.to_bits(),
                b.v.to_bits(),
                "value {} came back as {}",
                a.v,
                b.v
            );
        }
        b.len()
    }

    fn series(vals: impl IntoIterator<Item = f64>) -> Vec<Sample> {
        vals.into_iter()
            .enumerate()
            .map(|(i, v)| Sample {
                t: 1_700_000_000_000 + i as i64 * 15_000,
                v,
            })
            .collect()
    }

    #[test]
    fn integer_counter_packs_far_below_xor() {
        let mut v = 0.0;
        let s = series((0..480).map(|i| {
            v += ((i * 7919) % 20) as f64;
            v
        }));
        let packed = round_trip(&s);
        let mut xor = XorChunk::new();
        for x in &s {
            xor.append(x.t, x.v);
        }
        assert!(
            packed * 2 < xor.bytes().len(),
            "packed {packed} bytes vs xor {}",
            xor.bytes().len()
        );
        assert_eq!(encode(&s)[0], ENC_SEEKABLE);
        assert_eq!(encode_unseekable(&s)[0], ENC_PACKED);
    }

    #[test]
    fn special_values_and_decimals_round_trip() {
        round_trip(&series([
            0.1,
            0.2,
            f64::NAN,
            STALE_NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            1e300,
            -1e-300,
            123.456,
            f64::MIN_POSITIVE,
            9_007_199_254_740_993.0,
            -42.0,
        ]));
        round_trip(&series([STALE_NAN]));
        round_trip(&series([1.5, STALE_NAN]));
        round_trip(&series([f64::NAN; 5]));
    }

    #[test]
    fn random_floats_round_trip_and_never_exceed_xor() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Uniform mantissas in one binade, then values wandering across signs and exponents.
        let a = series((0..300).map(|_| f64::from_bits((next() >> 12) | 0x3ff0_0000_0000_0000)));
        let b = series((0..300).map(|_| f64::from_bits(next()) % 1e6));
        for s in [a, b] {
            let len = round_trip(&s);
            let mut xor = XorChunk::new();
            for x in &s {
                xor.append(x.t, x.v);
            }
            assert!(len <= xor.bytes().len() + 1);
        }
    }

    #[test]
    fn irregular_timestamps_and_counter_resets() {
        let s: Vec<Sample> = (0..500)
            .map(|i: i64| Sample {
                t: -5_000_000 + i * 15_000 + (i * 31 % 17) - if i % 97 == 0 { 9_000 } else { 0 },
                v: if i % 120 == 0 { 0.0 } else { (i * 1000) as f64 },
            })
            .collect();
        round_trip(&s);
        // Timestamps near the extremes of i64 survive the wrapping arithmetic.
        round_trip(&[
            Sample {
                t: i64::MIN + 1,
                v: 1.0,
            },
            Sample { t: 0, v: 2.0 },
            Sample {
                t: i64::MAX - 1,
                v: 3.0,
            },
        ]);
    }

    #[test]
    fn every_window_decodes_what_the_full_chunk_holds() {
        let mut v = 0.0;
        let s: Vec<Sample> = (0..200i64)
            .map(|i| {
                v += (i * 7 % 13) as f64;
                Sample {
                    t: i * 1000 + (i % 3),
                    v: match i % 50 {
                        17 => f64::NAN,
                        33 => 0.1 + v,
                        _ => v,
                    },
                }
            })
            .collect();
        // Evenly spaced, counter increments 0..19 (mixed-radix values): the decoder computes
        // which indexes a window wants instead of walking the timestamps.
        let mut v = 0.0;
        let even: Vec<Sample> = (0..480i64)
            .map(|i| {
                v += (i * 11 % 20) as f64;
                Sample {
                    t: 1_234 + i * 15_000,
                    v,
                }
            })
            .collect();
        let mut windows = vec![
            (0, 0),
            (-5, 3),
            (5000, 17_000),
            (33_000, 33_000),
            (150_000, 1 << 40),
            (i64::MIN, i64::MAX),
            (i64::MIN, i64::MIN),
            (i64::MAX, i64::MAX),
        ];
        for k in [0usize, 1, 2, 3, 100, 478, 479] {
            let t = even[k].t;
            windows.extend([
                (t, t),
                (t - 1, t + 1),
                (t + 1, t + 14_999),
                (i64::MIN, t),
                (t, i64::MAX),
                (t - 300_000, t),
            ]);
        }
        for enc in [
            encode(&s),
            encode(&s[..2]),
            encode(&s[..1]),
            encode(&even),
            encode(&even[..3]),
        ] {
            let mut all = Vec::new();
            decode_into(&enc, i64::MIN, i64::MAX, &mut all).unwrap();
            for &(lo, hi) in &windows {
                let mut got = vec![Sample { t: -1, v: -1.0 }]; // appends after what is there
                decode_into(&enc, lo, hi, &mut got).unwrap();
                let want: Vec<Sample> = all
                    .iter()
                    .copied()
                    .filter(|x| x.t >= lo && x.t <= hi)
                    .collect();
                assert_eq!(got.len(), want.len() + 1);
                for (a, b) in got[1..].iter().zip(&want) {
                    assert_eq!(
                        (a.t, a.v.to_bits()),
                        (b.t, b.v.to_bits()),
                        "window {lo}..={hi}"
                    );
                }
            }
        }
    }

    #[test]
    fn out_of_order_timestamps_in_a_window_are_damage_not_a_panic() {
        // Kept (100), skipped (10 < mint), kept again (200): not one run of indexes.
        let s: Vec<Sample> = [0, 100, 10, 200]
            .into_iter()
            .map(|t| Sample { t, v: t as f64 })
            .collect();
        for seekable in [false, true] {
            let b = encode_packed(&s, seekable);
            let mut out = Vec::new();
            assert!(decode_into(&b, 50, 300, &mut out).is_none());
            assert!(out.is_empty(), "nothing half-decoded is left behind");
        }
    }

    #[test]
    fn window_is_applied_and_damage_is_detected() {
        let s = series((0..100).map(|i| i as f64));
        let b = encode(&s);
        let mut out = Vec::new();
        decode_into(&b, s[10].t, s[19].t, &mut out).unwrap();
        assert_eq!(out.len(), 10);
        assert_eq!(out[0].v, 10.0);
        for cut in 0..b.len() {
            let mut out = Vec::new();
            // Truncated chunks never panic; most are reported as damaged.
            let _ = decode_into(&b[..cut], i64::MIN, i64::MAX, &mut out);
        }
        assert!(decode_into(&[9, 1, 2], 0, 0, &mut Vec::new()).is_none());
    }

    /// A xorshift generator from `seed`, giving numbers uniform in `0..n`.
    fn uniform(mut x: u64) -> impl FnMut(u64) -> u64 {
        move |n| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        }
    }

    /// Long series of every shape the encoder has an order for, with jittered and even
    /// timestamps: every window (around each seek point, inside and across them) decodes, from
    /// a seekable chunk, exactly what the whole chunk holds and what the unseekable encoding
    /// of the same samples gives.
    #[test]
    fn seek_points_give_what_a_full_decode_gives() {
        let mut rnd = uniform(0x853c_49e6_748f_ea9b);
        let n = 2_000i64;
        let mut shapes: Vec<(&str, Vec<f64>)> = Vec::new();
        let mut c = 0.0;
        shapes.push((
            "counter 0..19 with resets",
            (0..n)
                .map(|i| {
                    c = if i % 700 == 699 {
                        0.0
                    } else {
                        c + rnd(20) as f64
                    };
                    c
                })
                .collect(),
        ));
        let mut g = 2000i64;
        shapes.push((
            "gauge in hundredths",
            (0..n)
                .map(|_| {
                    g += rnd(201) as i64 - 100;
                    g as f64 / 100.0
                })
                .collect(),
        ));
        shapes.push((
            "steady growth (deltas of deltas)",
            (0..n).map(|i| (i * i * 3 + rnd(3) as i64) as f64).collect(),
        ));
        shapes.push((
            "full-precision floats",
            (0..n).map(|i| 1.0 + i as f64 / 7.0).collect(),
        ));
        // Exceptions exactly at seek points: resets whose deltas (or deltas of deltas) are
        // stream values 240, 480 and 1200, NaN on the samples there.
        let mut c = 0.0;
        shapes.push((
            "resets and NaN at seek points",
            (0..n)
                .map(|i| {
                    c = if [241, 242, 481, 482, 1201].contains(&i) {
                        1.0
                    } else {
                        c + rnd(5) as f64
                    };
                    if [240, 480, 1200].contains(&i) {
                        f64::NAN
                    } else {
                        c
                    }
                })
                .collect(),
        ));
        shapes.push((
            "stale markers and NaN",
            (0..n)
                .map(|i| match i % 301 {
                    7 => STALE_NAN,
                    100 => f64::NAN,
                    _ => (i / 3) as f64,
                })
                .collect(),
        ));
        let mut seeks = 0;
        // Lengths around the seek points: none (241 samples), the first just reached.
        for (name, vals) in shapes
            .iter()
            .flat_map(|(name, v)| [241, 242, 243, 480, 481, 2000].map(|len| (name, &v[..len])))
        {
            for jitter in [0, 1] {
                let mut t = 1_700_000_000_000i64;
                let samples: Vec<Sample> = vals
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        t += 15_000 + jitter * (rnd(41) as i64 - 20);
                        // A gap now and then (a restarted target), and right at the first
                        // seek points of the timestamp stream.
                        if jitter == 1 && (i % 613 == 0 || i == 242 || i == 482) {
                            t += 300_000;
                        }
                        Sample { t, v }
                    })
                    .collect();
                let seekable = encode_packed(&samples, true);
                let plain = encode_packed(&samples, false);
                let mut whole = Vec::new();
                decode_into(&seekable, i64::MIN, i64::MAX, &mut whole).expect("decodes");
                assert_eq!(whole.len(), samples.len(), "{name}");
                for (a, b) in whole.iter().zip(&samples) {
                    assert_eq!((a.t, a.v.to_bits()), (b.t, b.v.to_bits()), "{name}");
                }
                let mut windows = Vec::new();
                for k in (0..samples.len()).step_by(SEEK_EVERY) {
                    for j in [
                        k.saturating_sub(2),
                        k.saturating_sub(1),
                        k,
                        k + 1,
                        k + 2,
                        k + 3,
                    ] {
                        let Some(s) = samples.get(j) else { continue };
                        windows.extend([
                            (s.t, s.t),
                            (s.t - 1, s.t + 1),
                            (s.t + 1, s.t + 400_000),
                            (s.t - 300_000, s.t),
                            (s.t, i64::MAX),
                            (i64::MIN, s.t),
                            (s.t - 4_000_000, s.t - 2_000_000),
                        ]);
                    }
                }
                for (lo, hi) in windows {
                    let want: Vec<(i64, u64)> = samples
                        .iter()
                        .filter(|s| s.t >= lo && s.t <= hi)
                        .map(|s| (s.t, s.v.to_bits()))
                        .collect();
                    for (enc, b) in [("seekable", &seekable), ("plain", &plain)] {
                        let mut got = Vec::new();
                        decode_into(b, lo, hi, &mut got).expect("decodes");
                        let (ts_from, vals_from) = STARTED_AT.with(|s| s.get());
                        if b[0] == ENC_SEEKABLE && !want.is_empty() {
                            let first = samples.iter().position(|s| s.t >= lo).unwrap();
                            // Values start at the last seek point before the first wanted
                            // sample (one sample later for deltas of deltas); timestamps too
                            // when they are not evenly spaced (0: computed, not walked).
                            let seek = first.saturating_sub(2) / SEEK_EVERY * SEEK_EVERY;
                            assert!(
                                seek == 0 || vals_from > seek,
                                "{name}: values from {vals_from} for sample {first}"
                            );
                            assert!(
                                jitter == 0 || seek == 0 || ts_from >= seek + 2,
                                "{name}: times from {ts_from} for sample {first}"
                            );
                            seeks += usize::from(vals_from > 2);
                        }
                        let got: Vec<(i64, u64)> =
                            got.iter().map(|s| (s.t, s.v.to_bits())).collect();
                        assert_eq!(got, want, "{name}, jitter {jitter}, {enc}, {lo}..={hi}");
                    }
                }
            }
        }
        assert!(seeks > 1_000, "{seeks} decodes started from a seek point");
    }

    /// What the seek points buy: a day of the data (counters with increments uniform in
    /// 0..19, gauges stepping by -1.00..1.00) as one seekable chunk per series costs within 2.5%
    /// of the data's entropy, and less than in 480-sample unseekable chunks.
    #[test]
    fn a_day_in_one_seekable_chunk_is_near_its_entropy() {
        let mut rnd = uniform(0x9e37_79b9_7f4a_7c15);
        let day = 5_760i64;
        let (mut c, mut g) = (0u64, 2_000i64);
        let counter = series((0..day).map(|_| {
            c += rnd(20);
            c as f64
        }));
        let gauge = series((0..day).map(|_| {
            g += rnd(201) as i64 - 100;
            g as f64 / 100.0
        }));
        let entropy_bytes = day as f64 * (20f64.log2() + 201f64.log2()) / 8.0;
        let seekable = (encode(&counter).len() + encode(&gauge).len()) as f64;
        let plain: usize = [&counter, &gauge]
            .iter()
            .flat_map(|s| s.chunks(480))
            .map(|p| encode_unseekable(p).len())
            .sum();
        assert!(
            seekable < 1.025 * entropy_bytes,
            "{seekable} bytes for an entropy of {entropy_bytes:.0}"
        );
        assert!(seekable < plain as f64, "{seekable} vs {plain}");
        // And one value from the middle is reached from the seek point before it.
        let mid = counter[3_000];
        let mut out = Vec::new();
        decode_into(&encode(&counter), mid.t, mid.t, &mut out).unwrap();
        assert_eq!(out, vec![mid]);
        assert_eq!(
            STARTED_AT.with(|s| s.get()).1,
            2_881,
            "values from sample 2,880 on"
        );
    }
}
