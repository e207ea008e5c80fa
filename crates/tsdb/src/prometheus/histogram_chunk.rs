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

/// The value widths a varbit prefix of 0 to 8 one-bits announces (Prometheus's varbit
/// encoding), shared by the reader and the writer.
const VARBIT_WIDTHS: [u32; 9] = [0, 3, 6, 9, 12, 18, 25, 56, 64];

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
        Ok(VARBIT_WIDTHS[ones])
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
    // As current Prometheus reads them: a chunk's first sample is `Unknown` whatever its
    // header says (the chunk before it may be gone, or may have been added later by
    // backfill), later ones `NotCounterReset`; gauge chunks hold gauges.
    let hint = |k: usize| match (header, k) {
        (0xC0, _) => CounterResetHint::Gauge,
        (_, k) if k > 0 => CounterResetHint::NotCounterReset,
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

/// The bit stream a chunk is written into, most significant bit first.
#[derive(Clone, Default)]
struct BitWriter {
    b: Vec<u8>,
    /// Bits used in the last byte (0 means it is full, or there is none).
    used: u8,
}

impl BitWriter {
    fn bit(&mut self, v: bool) {
        if self.used == 0 {
            self.b.push(0);
        }
        if v {
            *self.b.last_mut().expect("pushed above") |= 0x80 >> self.used;
        }
        self.used = (self.used + 1) % 8;
    }

    /// The low `n` bits of `v`, highest first.
    fn bits(&mut self, v: u64, n: u32) {
        for i in (0..n).rev() {
            self.bit(v >> i & 1 == 1);
        }
    }

    /// `v` (its low `w` bits) after the prefix announcing the narrowest width for which
    /// `fits(w)`; 0 is a single 0 bit.
    fn varbit(&mut self, v: u64, fits: impl Fn(u32) -> bool) {
        let ones = (1..VARBIT_WIDTHS.len())
            .find(|&k| fits(VARBIT_WIDTHS[k]))
            .unwrap_or(VARBIT_WIDTHS.len() - 1);
        let w = VARBIT_WIDTHS[ones];
        // `ones` one-bits ended by a zero, except after eight.
        if ones < 8 {
            self.bits((1 << (ones + 1)) - 2, ones as u32 + 1);
        } else {
            self.bits(0xff, 8);
        }
        self.bits(if w == 64 { v } else { v & ((1u64 << w) - 1) }, w);
    }

    fn varbit_int(&mut self, v: i64) {
        if v == 0 {
            self.bit(false);
            return;
        }
        // The narrowest two's complement width whose range (with +2^(w-1)) holds `v`.
        self.varbit(v as u64, |w| {
            w == 64 || (-((1i64 << (w - 1)) - 1) <= v && v <= 1i64 << (w - 1))
        });
    }

    fn varbit_uint(&mut self, v: u64) {
        if v == 0 {
            self.bit(false);
            return;
        }
        self.varbit(v, |w| w == 64 || v < 1u64 << w);
    }

    fn f64(&mut self, v: f64) {
        self.bits(v.to_bits(), 64);
    }
}

/// One float field's XOR state on the writing side (the window of its last explicit write;
/// `leading == u32::MAX` before there is one).
#[derive(Clone, Copy)]
struct XorW {
    bits: u64,
    leading: u32,
    trailing: u32,
}

impl XorW {
    fn start(v: f64) -> XorW {
        XorW {
            bits: v.to_bits(),
            leading: u32::MAX,
            trailing: 0,
        }
    }

    fn put(&mut self, w: &mut BitWriter, v: f64) {
        let d = v.to_bits() ^ self.bits;
        self.bits = v.to_bits();
        if d == 0 {
            w.bit(false);
            return;
        }
        w.bit(true);
        // Five bits hold the leading zeros: more than 31 are written as 31.
        let leading = d.leading_zeros().min(31);
        let trailing = d.trailing_zeros();
        if self.leading != u32::MAX && leading >= self.leading && trailing >= self.trailing {
            w.bit(false);
            w.bits(d >> self.trailing, 64 - self.leading - self.trailing);
            return;
        }
        w.bit(true);
        let sig = 64 - leading - trailing;
        w.bits(leading as u64, 5);
        // 64 significant bits are written as 0 (six bits hold 0..=63).
        w.bits(sig as u64 & 63, 6);
        w.bits(d >> trailing, sig);
        self.leading = leading;
        self.trailing = trailing;
    }
}

/// The values one decoded sample of `layout` holds, as [`decode`] counts them.
fn values_per_sample(layout: &FloatHistogram) -> usize {
    layout.positive_spans.len()
        + layout.negative_spans.len()
        + layout.custom_values.len()
        + layout
            .positive_buckets
            .len()
            .max(span_buckets(&layout.positive_spans))
        + layout
            .negative_buckets
            .len()
            .max(span_buckets(&layout.negative_spans))
        + 8
}

fn span_buckets(s: &[Span]) -> usize {
    s.iter().map(|x| x.length as usize).sum()
}

/// Whether a chunk can hold `h`: the reader's bounds on spans, buckets and custom bounds per
/// side, and on the values one sample decodes to. Appenders refuse histograms beyond them
/// (no chunk could be read back).
pub fn fits(h: &FloatHistogram) -> bool {
    const SIDE: usize = 1 << 16;
    h.positive_spans.len() <= SIDE
        && h.negative_spans.len() <= SIDE
        && h.custom_values.len() <= SIDE
        && span_buckets(&h.positive_spans) <= SIDE
        && span_buckets(&h.negative_spans) <= SIDE
        && values_per_sample(h) <= MAX_DECODED_VALUES
}

/// Samples one chunk holds at most: Prometheus's head cuts its chunks at 120 samples too.
pub const MAX_CHUNK_SAMPLES: usize = 120;

/// Why a sample does not go into the chunk being written: the caller starts a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The chunk holds [`MAX_CHUNK_SAMPLES`].
    Samples,
    /// Another schema, zero threshold, span layout or set of custom bounds.
    Layout,
    /// A counter reset (told by the sample's hint or seen against the previous sample): it
    /// starts a chunk whose header says so.
    CounterReset,
    /// A gauge after counters, or a counter after gauges.
    Kind,
    /// A count that is not a whole number, for an integer chunk.
    Encoding,
}

/// The largest count an integer chunk holds: every whole number up to it is exact as an
/// `f64`, so what is read back is bit for bit what was written.
const MAX_INTEGER_COUNT: f64 = (1u64 << 53) as f64;

fn whole(v: f64) -> bool {
    // `as` saturates; the round trip also refuses -0.0, NaN and fractions.
    (0.0..=MAX_INTEGER_COUNT).contains(&v) && ((v as u64) as f64).to_bits() == v.to_bits()
}

/// Whether every count of `h` (total, zero bucket, buckets) is a whole number an integer
/// chunk holds exactly. The sum is a float in both encodings.
pub fn integer_counts(h: &FloatHistogram) -> bool {
    whole(h.count)
        && whole(h.zero_count)
        && h.positive_buckets
            .iter()
            .chain(&h.negative_buckets)
            .all(|&v| whole(v))
}

/// [`HistogramChunk::last_buckets`]: an integer chunk keeps each side's buckets as deltas
/// from the bucket before (from 0), summed back here; a float chunk its values. Allocates
/// nothing: reset detection runs on every append.
struct LastBuckets<'a> {
    counts: &'a Counts,
    i: usize,
    positive: usize,
    prev: i64,
}

impl Iterator for LastBuckets<'_> {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        let i = self.i;
        self.i += 1;
        match self.counts {
            Counts::Float { buckets, .. } => buckets.get(i).map(|b| f64::from_bits(b.bits)),
            Counts::Int { buckets, .. } => {
                let b = buckets.get(i)?;
                if i == self.positive {
                    self.prev = 0;
                }
                self.prev = self.prev.wrapping_add(b.v);
                Some(self.prev as f64)
            }
        }
    }
}

/// What reset detection needs of the newest sample beyond its buckets.
#[derive(Clone, Copy)]
struct LastCounts {
    count: f64,
    zero: f64,
}

/// An integer field's state on the writing side: its value and its last delta.
#[derive(Clone, Copy, Default)]
struct IntW {
    v: i64,
    d: i64,
}

impl IntW {
    /// Write `v` as a delta of deltas.
    fn put(&mut self, w: &mut BitWriter, v: i64) {
        let d = v.wrapping_sub(self.v);
        w.varbit_int(d.wrapping_sub(self.d));
        self.v = v;
        self.d = d;
    }
}

/// The counts' state of a chunk: XOR-coded floats (`EncFloatHistogram`) or integers coded as
/// deltas of deltas (`EncHistogram`), buckets there as deltas within the histogram.
#[derive(Clone)]
enum Counts {
    Float {
        count: XorW,
        zero: XorW,
        buckets: Vec<XorW>,
    },
    Int {
        count: IntW,
        zero: IntW,
        /// Per bucket: its delta from the bucket before it (each side starts from 0), and
        /// how that delta changed at the last sample.
        buckets: Vec<IntW>,
    },
}

/// Each side's buckets as deltas within the histogram (the first absolute), as integers.
fn in_histogram_deltas(h: &FloatHistogram) -> impl Iterator<Item = i64> + '_ {
    fn side(b: &[f64]) -> impl Iterator<Item = i64> + '_ {
        b.iter().scan(0i64, |prev, &v| {
            let v = v as i64;
            let d = v.wrapping_sub(*prev);
            *prev = v;
            Some(d)
        })
    }
    side(&h.positive_buckets).chain(side(&h.negative_buckets))
}

/// Writes a native histogram chunk in Prometheus's encoding: vigil's head and blocks keep
/// native histograms in it, so Prometheus-format blocks and streamed remote read carry the
/// same bytes. A chunk whose first sample has whole counts is an integer chunk
/// (`EncHistogram`, as Prometheus stores scraped histograms: counts change by small whole
/// steps, which deltas of deltas write in a few bits); otherwise a float chunk. One layout
/// per chunk: a sample of another layout, a counter reset, a change of kind or a fraction
/// in an integer chunk starts the next chunk (Prometheus instead widens a chunk's layout
/// when buckets are only added; vigil's chunks are then smaller in number of samples, never
/// wrong).
#[derive(Clone)]
pub struct HistogramChunk {
    w: BitWriter,
    n: u16,
    header: u8,
    /// The layout every non-stale sample has (buckets left empty).
    layout: FloatHistogram,
    t: i64,
    t_delta: i64,
    sum: XorW,
    counts: Counts,
    /// The total and zero-bucket counts of the newest sample that is not a stale marker, for
    /// reset detection; its buckets are `counts`' last values (a stale marker writes none).
    /// Kept instead of a copy of the histogram, which would cost each open chunk a second
    /// set of buckets and each append a clone.
    last: Option<LastCounts>,
    /// Whether whole counts make an integer chunk (not for vigil's version 4 blocks).
    integer_ok: bool,
}

fn header_bits(hint: CounterResetHint) -> u8 {
    match hint {
        CounterResetHint::Unknown => 0x00,
        CounterResetHint::NotCounterReset => 0x40,
        CounterResetHint::CounterReset => 0x80,
        CounterResetHint::Gauge => 0xC0,
    }
}

fn zero_threshold(w: &mut BitWriter, zt: f64) {
    if zt == 0.0 {
        w.bits(0, 8);
        return;
    }
    // Powers of two from 2^-243 to 2^9 fit in the byte itself (2^(b-244)).
    let e = zt.log2();
    if e.fract() == 0.0 && (-243.0..=9.0).contains(&e) && 2f64.powi(e as i32) == zt {
        w.bits((e as i32 + 244) as u64, 8);
    } else {
        w.bits(255, 8);
        w.f64(zt);
    }
}

fn put_spans(w: &mut BitWriter, spans: &[Span]) {
    w.varbit_uint(spans.len() as u64);
    for s in spans {
        w.varbit_uint(s.length as u64);
        w.varbit_int(s.offset as i64);
    }
}

/// A custom bound: thousandths as an integer plus one when that is exact, else 0 and the
/// float's bits.
fn put_custom_bound(w: &mut BitWriter, v: f64) {
    let k = v * 1000.0;
    if k >= 0.0 && k.fract() == 0.0 && k < (1u64 << 53) as f64 && (k as u64) as f64 / 1000.0 == v {
        w.varbit_uint(k as u64 + 1);
    } else {
        w.varbit_uint(0);
        w.f64(v);
    }
}

fn same_layout(a: &FloatHistogram, b: &FloatHistogram) -> bool {
    a.schema == b.schema
        && a.zero_threshold.to_bits() == b.zero_threshold.to_bits()
        && same_buckets(a, b)
}

/// The same spans on both sides and the same custom bounds, bit for bit (the WAL's dense
/// record writes a layout only where it differs from the histogram before).
pub(crate) fn same_buckets(a: &FloatHistogram, b: &FloatHistogram) -> bool {
    a.positive_spans == b.positive_spans
        && a.negative_spans == b.negative_spans
        && a.custom_values.len() == b.custom_values.len()
        && a.custom_values
            .iter()
            .zip(&b.custom_values)
            .all(|(x, y)| x.to_bits() == y.to_bits())
}

impl Default for HistogramChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl HistogramChunk {
    pub fn new() -> Self {
        HistogramChunk {
            w: BitWriter::default(),
            n: 0,
            header: 0,
            layout: FloatHistogram::default(),
            t: 0,
            t_delta: 0,
            sum: XorW::start(0.0),
            counts: Counts::Int {
                count: IntW::default(),
                zero: IntW::default(),
                buckets: Vec::new(),
            },
            last: None,
            integer_ok: true,
        }
    }

    /// A chunk in the float encoding whatever its counts (what vigil's version 4 blocks
    /// hold).
    pub fn new_float() -> Self {
        HistogramChunk {
            integer_ok: false,
            ..Self::new()
        }
    }

    pub fn len(&self) -> usize {
        self.n as usize
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// [`ENC_HISTOGRAM`] or [`ENC_FLOAT_HISTOGRAM`]: how [`decode`] reads [`Self::bytes`].
    pub fn encoding(&self) -> u8 {
        match self.counts {
            Counts::Int { .. } => ENC_HISTOGRAM,
            Counts::Float { .. } => ENC_FLOAT_HISTOGRAM,
        }
    }

    /// Append `h` at `t` (after every sample already in the chunk), or say why it belongs in
    /// a new chunk. The first sample's hint becomes the chunk's header, and its counts choose
    /// the encoding; later samples are read back as `NotCounterReset` (or `Gauge`). Layouts
    /// must pass [`vigil_model::histogram::valid_layout`] (callers check what they take in).
    pub fn append(&mut self, t: i64, h: &FloatHistogram) -> Result<(), Full> {
        let stale = is_stale_nan(h.sum);
        if self.n == 0 {
            self.first(t, h, stale, self.integer_ok && integer_counts(h));
            return Ok(());
        }
        // The reader refuses a chunk that decodes to more values than this (damage must not
        // become an allocation): a chunk of wide histograms is cut before it gets there.
        if self.n as usize >= MAX_CHUNK_SAMPLES
            || (self.n as usize + 1).saturating_mul(values_per_sample(&self.layout))
                > MAX_DECODED_VALUES
        {
            return Err(Full::Samples);
        }
        if !stale {
            let gauge_chunk = self.header == 0xC0;
            if gauge_chunk != (h.hint == CounterResetHint::Gauge) {
                return Err(Full::Kind);
            }
            // A reset first: a finer schema or narrower zero bucket is one, and its chunk's
            // header says so.
            if !gauge_chunk && (h.hint == CounterResetHint::CounterReset || self.reset_before(h)) {
                return Err(Full::CounterReset);
            }
            if !same_layout(&self.layout, h) {
                return Err(Full::Layout);
            }
        }
        // After the reset check, so a reset with fractions still starts a chunk saying so.
        if matches!(self.counts, Counts::Int { .. }) && !integer_counts(h) {
            return Err(Full::Encoding);
        }
        let d = t.wrapping_sub(self.t);
        self.w.varbit_int(d.wrapping_sub(self.t_delta));
        self.t_delta = d;
        self.t = t;
        let w = &mut self.w;
        match &mut self.counts {
            Counts::Float {
                count,
                zero,
                buckets,
            } => {
                count.put(w, h.count);
                zero.put(w, h.zero_count);
                self.sum.put(w, h.sum);
                if !stale {
                    let vals = h.positive_buckets.iter().chain(&h.negative_buckets);
                    for (x, &v) in buckets.iter_mut().zip(vals) {
                        x.put(w, v);
                    }
                }
            }
            Counts::Int {
                count,
                zero,
                buckets,
            } => {
                count.put(w, h.count as i64);
                zero.put(w, h.zero_count as i64);
                self.sum.put(w, h.sum);
                if !stale {
                    for (x, v) in buckets.iter_mut().zip(in_histogram_deltas(h)) {
                        x.put(w, v);
                    }
                }
            }
        }
        if !stale {
            self.last = Some(LastCounts {
                count: h.count,
                zero: h.zero_count,
            });
        }
        self.n += 1;
        Ok(())
    }

    /// Whether `h` resets the counters of the newest sample that is not a stale marker
    /// (`FloatHistogram::detect_reset`). With the chunk's layout (the common case) that is
    /// any count lower than before, read off the writer's state; with another layout the
    /// newest sample is rebuilt from that state and compared in full.
    fn reset_before(&self, h: &FloatHistogram) -> bool {
        let Some(last) = self.last else {
            return false;
        };
        match h.hint {
            CounterResetHint::CounterReset => return true,
            CounterResetHint::NotCounterReset => return false,
            _ => {}
        }
        if !same_layout(&self.layout, h) {
            return h.detect_reset(&self.rebuild_last(last));
        }
        if h.count < last.count {
            return true;
        }
        // Custom buckets have no zero bucket (`detect_reset` does not read it for them).
        if !h.uses_custom_buckets() && h.zero_count < last.zero {
            return true;
        }
        let now = h.positive_buckets.iter().chain(&h.negative_buckets);
        self.last_buckets().zip(now).any(|(was, &v)| v < was)
    }

    /// The bucket counts of the newest sample that is not a stale marker, positive side then
    /// negative, read off the writer's state (a stale marker writes none).
    fn last_buckets(&self) -> LastBuckets<'_> {
        LastBuckets {
            counts: &self.counts,
            i: 0,
            positive: span_buckets(&self.layout.positive_spans),
            prev: 0,
        }
    }

    /// The newest sample that is not a stale marker, as far as reset detection reads it (its
    /// sum is left 0).
    fn rebuild_last(&self, last: LastCounts) -> FloatHistogram {
        let mut buckets: Vec<f64> = self.last_buckets().collect();
        let positive = span_buckets(&self.layout.positive_spans);
        let negative = buckets.split_off(positive.min(buckets.len()));
        FloatHistogram {
            count: last.count,
            zero_count: last.zero,
            positive_buckets: buckets,
            negative_buckets: negative,
            ..self.layout.clone()
        }
    }

    /// The chunk's first sample: the layout once, then every field whole, as integers when
    /// `integer` (its counts must then be [`integer_counts`]).
    fn first(&mut self, t: i64, h: &FloatHistogram, stale: bool, integer: bool) {
        self.header = header_bits(h.hint);
        // A stale marker first in a chunk has an empty layout (as Prometheus writes it).
        let layout = if stale {
            FloatHistogram::default()
        } else {
            FloatHistogram {
                positive_buckets: Vec::new(),
                negative_buckets: Vec::new(),
                hint: CounterResetHint::Unknown,
                ..h.clone()
            }
        };
        let w = &mut self.w;
        zero_threshold(w, layout.zero_threshold);
        w.varbit_int(layout.schema as i64);
        put_spans(w, &layout.positive_spans);
        put_spans(w, &layout.negative_spans);
        if layout.schema == CUSTOM_BUCKETS_SCHEMA {
            w.varbit_uint(layout.custom_values.len() as u64);
            for &v in &layout.custom_values {
                put_custom_bound(w, v);
            }
        }
        w.varbit_int(t);
        self.sum = XorW::start(h.sum);
        if integer {
            let (count, zero) = (h.count as i64, h.zero_count as i64);
            w.varbit_uint(count as u64);
            w.varbit_uint(zero as u64);
            w.f64(h.sum);
            let mut buckets = Vec::new();
            if !stale {
                for d in in_histogram_deltas(h) {
                    w.varbit_int(d);
                    buckets.push(IntW { v: d, d: 0 });
                }
            }
            self.counts = Counts::Int {
                count: IntW { v: count, d: 0 },
                zero: IntW { v: zero, d: 0 },
                buckets,
            };
        } else {
            w.f64(h.count);
            w.f64(h.zero_count);
            w.f64(h.sum);
            let mut buckets = Vec::new();
            if !stale {
                for &v in h.positive_buckets.iter().chain(&h.negative_buckets) {
                    w.f64(v);
                    buckets.push(XorW::start(v));
                }
            }
            self.counts = Counts::Float {
                count: XorW::start(h.count),
                zero: XorW::start(h.zero_count),
                buckets,
            };
        }
        self.layout = layout;
        self.t = t;
        self.n = 1;
        self.last = (!stale).then_some(LastCounts {
            count: h.count,
            zero: h.zero_count,
        });
    }

    /// The chunk's bytes: sample count (u16 BE), header flags, bit stream.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + self.w.b.len());
        out.extend_from_slice(&self.n.to_be_bytes());
        out.push(self.header);
        out.extend_from_slice(&self.w.b);
        out
    }

    /// The newest sample's time.
    pub fn max_time(&self) -> Option<i64> {
        (self.n > 0).then_some(self.t)
    }
}

/// One chunk [`encode_all`] wrote: its first and last sample's times, its encoding
/// ([`ENC_HISTOGRAM`] or [`ENC_FLOAT_HISTOGRAM`]) and its bytes.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub min_t: i64,
    pub max_t: i64,
    pub encoding: u8,
    pub bytes: Vec<u8>,
}

/// Encode histogram samples (time-ordered) as a run of chunks, integer ones where the
/// counts are whole.
pub fn encode_all(samples: &[vigil_model::HistogramSample]) -> Vec<Encoded> {
    encode_with(samples, HistogramChunk::new)
}

/// Encode histogram samples (time-ordered) as a run of float chunks only.
pub fn encode_all_float(samples: &[vigil_model::HistogramSample]) -> Vec<Encoded> {
    encode_with(samples, HistogramChunk::new_float)
}

fn encode_with(
    samples: &[vigil_model::HistogramSample],
    fresh: fn() -> HistogramChunk,
) -> Vec<Encoded> {
    let mut out = Vec::new();
    let mut c = fresh();
    let mut min_t = 0;
    let done = |c: &HistogramChunk, min_t: i64| Encoded {
        min_t,
        max_t: c.max_time().unwrap_or(min_t),
        encoding: c.encoding(),
        bytes: c.bytes(),
    };
    for s in samples {
        if c.is_empty() {
            min_t = s.t;
        }
        if let Err(why) = c.append(s.t, &s.h) {
            out.push(done(&c, min_t));
            c = fresh();
            min_t = s.t;
            // A new chunk takes any sample; a detected reset goes in its header.
            let mut h = (*s.h).clone();
            if why == Full::CounterReset {
                h.hint = CounterResetHint::CounterReset;
            }
            let _ = c.append(s.t, &h);
        }
    }
    if !c.is_empty() {
        out.push(done(&c, min_t));
    }
    out
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

    fn hist(count: f64, buckets: &[f64], schema: i32) -> FloatHistogram {
        FloatHistogram {
            schema,
            zero_threshold: 2f64.powi(-128),
            zero_count: 0.5,
            count,
            sum: count * 1.25,
            positive_spans: vec![
                Span {
                    offset: -2,
                    length: 2,
                },
                Span {
                    offset: 3,
                    length: (buckets.len() - 2) as u32,
                },
            ],
            positive_buckets: buckets.to_vec(),
            ..Default::default()
        }
    }

    /// The writer's reset check, read off its state, decides as `detect_reset` against a
    /// copy of the newest sample that is not a stale marker would: over random runs of integer
    /// and float histograms (both sides' buckets, counts that mostly grow and sometimes
    /// drop, layouts that sometimes change, custom buckets, stale markers between).
    #[test]
    fn reset_check_from_the_writers_state_matches_detect_reset() {
        use vigil_model::sample::STALE_NAN;
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let (mut resets, mut checked) = (0, 0);
        for run in 0..400 {
            let custom = run % 5 == 0;
            let integer = run % 2 == 0;
            let mut c = HistogramChunk::new();
            let mut last: Option<FloatHistogram> = None;
            let mut base = 10.0;
            for i in 0..40 {
                let wide = rnd(8) == 0;
                let (pos, neg) = if custom {
                    (4, 0)
                } else if wide {
                    (4, 2)
                } else {
                    (3, 2)
                };
                let step = |r: u64| if integer { r as f64 } else { r as f64 * 0.25 };
                base += step(rnd(5));
                let mut buckets: Vec<f64> =
                    (0..pos + neg).map(|j| base + step(j as u64 * 2)).collect();
                let mut zero = base;
                match rnd(10) {
                    0 => {
                        let j = rnd(buckets.len() as u64) as usize;
                        buckets[j] -= step(3) + 1.0;
                    }
                    1 => zero -= 1.0,
                    _ => {}
                }
                let count = buckets.iter().sum::<f64>() + if custom { 0.0 } else { zero };
                let mut h = FloatHistogram {
                    schema: if custom { CUSTOM_BUCKETS_SCHEMA } else { 1 },
                    zero_threshold: if custom { 0.0 } else { 0.001 },
                    zero_count: if custom { 0.0 } else { zero },
                    count: if rnd(12) == 0 { count - 1.0 } else { count },
                    sum: count,
                    positive_spans: vec![Span {
                        offset: 0,
                        length: pos as u32,
                    }],
                    positive_buckets: buckets[..pos].to_vec(),
                    negative_spans: if neg > 0 {
                        vec![Span {
                            offset: 1,
                            length: neg as u32,
                        }]
                    } else {
                        vec![]
                    },
                    negative_buckets: buckets[pos..].to_vec(),
                    custom_values: if custom { vec![0.5, 1.0, 2.0] } else { vec![] },
                    ..Default::default()
                };
                if rnd(15) == 0 {
                    h.sum = STALE_NAN;
                }
                let stale = is_stale_nan(h.sum);
                let t = i * 1000;
                let want = !stale && last.as_ref().is_some_and(|p| h.detect_reset(p));
                let got = !stale && c.n > 0 && c.reset_before(&h);
                assert_eq!(got, want, "run {run} sample {i}: {h:?} after {last:?}");
                checked += 1;
                resets += usize::from(want);
                if c.append(t, &h).is_err() {
                    c = HistogramChunk::new();
                    c.append(t, &h).unwrap();
                }
                if !stale {
                    last = Some(h);
                } else if c.n == 1 {
                    // A chunk that starts with a stale marker has no newest sample.
                    last = None;
                }
            }
        }
        // The runs hold both answers many times.
        assert!(
            resets > 200 && checked - resets > 5000,
            "{resets} of {checked}"
        );
    }

    /// What the writer writes, the reader (the one that reads Prometheus's chunks) reads back
    /// exactly: values bit for bit, and the hints a Prometheus reader gives them; a new
    /// chunk starts at each layout change, reset or change of kind.
    #[test]
    fn written_chunks_read_back_exactly() {
        use vigil_model::HistogramSample;
        use vigil_model::sample::STALE_NAN;

        let mut xs: Vec<FloatHistogram> = Vec::new();
        for i in 0..300 {
            let f = i as f64;
            xs.push(hist(3.0 + f, &[1.0 + f, 0.5, 0.25 * f, 1e-3 * f], 0));
        }
        // A stale marker, then a reset, a finer schema, custom bounds, gauges.
        xs.push(FloatHistogram {
            sum: STALE_NAN,
            ..Default::default()
        });
        xs.push(hist(1.0, &[0.0, 1.0, 0.0], 0));
        xs.push(hist(2.0, &[0.0, 2.0, 0.0], 3));
        let mut nhcb = FloatHistogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            count: 7.0,
            sum: 0.75,
            positive_spans: vec![Span {
                offset: 0,
                length: 3,
            }],
            positive_buckets: vec![1.0, 4.0, 2.0],
            custom_values: vec![0.1, 0.25, std::f64::consts::PI],
            ..Default::default()
        };
        xs.push(nhcb.clone());
        nhcb.count = 9.0;
        nhcb.positive_buckets[2] = 4.0;
        xs.push(nhcb);
        for k in 0..3 {
            let mut g = hist(10.0 - k as f64, &[5.0, 1.0 - k as f64 * 0.5, 2.0], 0);
            g.hint = CounterResetHint::Gauge;
            xs.push(g);
        }
        let samples: Vec<HistogramSample> = xs
            .iter()
            .enumerate()
            .map(|(i, h)| HistogramSample {
                t: 1_000_000 + i as i64 * 15_000 + (i as i64 % 7) * 3,
                h: std::sync::Arc::new(h.clone()),
            })
            .collect();
        let chunks = encode_all(&samples);
        // 300 regular samples in 120s, the stale marker joins the third; a reset; a finer
        // schema; custom bounds (two); gauges.
        let sizes: Vec<usize> = chunks
            .iter()
            .map(|c| u16::from_be_bytes([c.bytes[0], c.bytes[1]]) as usize)
            .collect();
        assert_eq!(sizes, [120, 120, 61, 1, 1, 2, 3]);
        // The first sample holds fractions (a float chunk), so does every other chunk but the
        // custom-bounds one, whose counts are whole.
        let encs: Vec<u8> = chunks.iter().map(|c| c.encoding).collect();
        let (f, i) = (ENC_FLOAT_HISTOGRAM, ENC_HISTOGRAM);
        assert_eq!(encs, [f, f, f, f, f, i, f]);
        let mut got = Vec::new();
        for c in &chunks {
            let d = decode(c.encoding, &c.bytes).unwrap();
            assert_eq!((d[0].0, d[d.len() - 1].0), (c.min_t, c.max_t));
            got.extend(d);
        }
        assert_eq!(got.len(), samples.len());
        for (i, ((t, h), want)) in got.iter().zip(&samples).enumerate() {
            assert_eq!(*t, want.t, "sample {i}");
            if is_stale_nan(want.h.sum) {
                assert!(is_stale_nan(h.sum), "sample {i}");
                continue;
            }
            assert!(h.same_as(&want.h), "sample {i}: {h:?} vs {:?}", want.h);
            assert_eq!(h.count.to_bits(), want.h.count.to_bits(), "sample {i}");
        }
        // The reset and the finer schema start chunks whose header says so, and their first
        // samples read as `Unknown`, as current Prometheus reads them; the gauge chunk's
        // samples are gauges.
        for (i, c) in chunks.iter().enumerate().skip(3).take(3) {
            assert_eq!(c.bytes[2], 0x80, "chunk {i} header");
        }
        assert_eq!(got[301].1.hint, CounterResetHint::Unknown);
        assert_eq!(got[304].1.hint, CounterResetHint::NotCounterReset);
        assert_eq!(got[305].1.hint, CounterResetHint::Gauge);
        assert_eq!(got[306].1.hint, CounterResetHint::Gauge);
        assert_eq!(got[1].1.hint, CounterResetHint::NotCounterReset);
    }

    /// Wide histograms: a chunk is cut before it would decode to more values than the reader
    /// takes, so every chunk written reads back; one wider than any chunk can hold does not
    /// fit (appenders refuse it).
    #[test]
    fn wide_histograms_make_chunks_the_reader_takes() {
        use vigil_model::HistogramSample;
        let n = 40_000usize;
        let wide = FloatHistogram {
            count: n as f64,
            sum: 1.0,
            positive_spans: vec![Span {
                offset: 0,
                length: n as u32,
            }],
            positive_buckets: vec![1.0; n],
            ..Default::default()
        };
        assert!(fits(&wide));
        let samples: Vec<HistogramSample> = (0..120)
            .map(|i| HistogramSample {
                t: i * 1000,
                h: std::sync::Arc::new(wide.clone()),
            })
            .collect();
        let chunks = encode_all(&samples);
        assert!(chunks.len() > 1, "{} chunks", chunks.len());
        let read: usize = chunks
            .iter()
            .map(|c| decode(c.encoding, &c.bytes).unwrap().len())
            .sum();
        assert_eq!(read, 120);
        let mut too_wide = wide.clone();
        too_wide.positive_spans[0].length = 70_000;
        too_wide.positive_buckets = vec![1.0; 70_000];
        assert!(!fits(&too_wide));
    }

    fn samples_of(xs: &[FloatHistogram]) -> Vec<vigil_model::HistogramSample> {
        xs.iter()
            .enumerate()
            .map(|(i, h)| vigil_model::HistogramSample {
                t: 1000 + i as i64 * 1000,
                h: std::sync::Arc::new(h.clone()),
            })
            .collect()
    }

    /// Whole counts are written as Prometheus writes integer histograms: byte for byte the
    /// chunk [`integer_chunk_decodes_counts_deltas_and_sums`] reads.
    #[test]
    fn integer_chunks_are_written_as_prometheus_writes_them() {
        let xs: Vec<FloatHistogram> = (0..3)
            .map(|k| {
                let k = k as f64;
                FloatHistogram {
                    zero_threshold: 2f64.powi(-128),
                    count: 3.0 + 2.0 * k,
                    sum: 2.5 + 2.0 * k,
                    positive_spans: vec![Span {
                        offset: 0,
                        length: 2,
                    }],
                    positive_buckets: vec![1.0 + k, 2.0 + k],
                    ..Default::default()
                }
            })
            .collect();
        let chunks = encode_all(&samples_of(&xs));
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].encoding, ENC_HISTOGRAM);
        assert_eq!(
            chunks[0].bytes,
            hex("00 03 00 74 46 47 8f a2 64 00 40 00 00 00 00 00 08 c7 c7 d1 26 b1 2e 21 20")
        );
    }

    /// Counters whose counts are whole go into integer chunks, a fraction starts a float
    /// chunk (which keeps the whole counts after it until it is cut); stale markers, negative buckets
    /// and big counts ride along; everything reads back bit for bit, and the integer chunks
    /// take less than two thirds of the float encoding's bytes.
    #[test]
    fn integer_and_float_chunks_alternate_as_counts_do() {
        use vigil_model::sample::STALE_NAN;
        let counter = |k: u64| {
            let b = [k * 3, k * 7 + 1, k * 2, (k * k) % 5 + k * 11];
            let n = [k, k / 2];
            FloatHistogram {
                count: (b.iter().sum::<u64>() + n.iter().sum::<u64>() + k) as f64,
                zero_count: k as f64,
                sum: k as f64 * 0.37,
                positive_spans: vec![
                    Span {
                        offset: -1,
                        length: 2,
                    },
                    Span {
                        offset: 2,
                        length: 2,
                    },
                ],
                positive_buckets: b.iter().map(|&v| v as f64).collect(),
                negative_spans: vec![Span {
                    offset: 0,
                    length: 2,
                }],
                negative_buckets: n.iter().map(|&v| v as f64).collect(),
                ..Default::default()
            }
        };
        let mut xs: Vec<FloatHistogram> = (0..150).map(counter).collect();
        xs.insert(
            40,
            FloatHistogram {
                sum: STALE_NAN,
                ..Default::default()
            },
        );
        let mut frac = counter(150);
        frac.positive_buckets[0] += 0.5;
        frac.count += 0.5;
        xs.push(frac);
        xs.extend((151..160).map(counter));
        let mut big = counter(160);
        big.positive_buckets[3] = (1u64 << 52) as f64;
        big.count += (1u64 << 52) as f64;
        xs.push(big);
        let samples = samples_of(&xs);
        let chunks = encode_all(&samples);
        let encs: Vec<(u8, usize)> = chunks
            .iter()
            .map(|c| (c.encoding, decode(c.encoding, &c.bytes).unwrap().len()))
            .collect();
        let (f, i) = (ENC_FLOAT_HISTOGRAM, ENC_HISTOGRAM);
        assert_eq!(encs, [(i, 120), (i, 31), (f, 11)]);
        let got: Vec<(i64, FloatHistogram)> = chunks
            .iter()
            .flat_map(|c| decode(c.encoding, &c.bytes).unwrap())
            .collect();
        assert_eq!(got.len(), samples.len());
        for (k, ((t, h), want)) in got.iter().zip(&samples).enumerate() {
            assert_eq!(*t, want.t, "sample {k}");
            if is_stale_nan(want.h.sum) {
                assert!(is_stale_nan(h.sum), "sample {k}");
                continue;
            }
            assert!(h.same_as(&want.h), "sample {k}: {h:?} vs {:?}", want.h);
            assert_eq!(h.sum.to_bits(), want.h.sum.to_bits(), "sample {k}");
        }
        // The whole counts after the fraction start an integer chunk once that one is cut.
        let again = encode_all(&samples[samples.len() - 10..]);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].encoding, i);
        // The integer encoding of the first 120 counters against the float one.
        let mut float = HistogramChunk::new_float();
        for s in &samples[..120] {
            float.append(s.t, &s.h).unwrap();
        }
        assert_eq!(float.encoding(), f);
        let (ib, fb) = (chunks[0].bytes.len(), float.bytes().len());
        // (The sums, XOR-coded in both, take much of either.)
        assert!(
            ib * 3 < fb * 2,
            "integer chunk {ib} bytes, float chunk {fb}"
        );
    }

    #[test]
    fn whole_counts_are_those_an_integer_chunk_holds_exactly() {
        for v in [0.0, 1.0, 1e15, MAX_INTEGER_COUNT] {
            assert!(whole(v), "{v}");
        }
        for v in [
            -0.0,
            -1.0,
            0.5,
            f64::NAN,
            f64::INFINITY,
            MAX_INTEGER_COUNT * 2.0,
        ] {
            assert!(!whole(v), "{v}");
        }
    }

    #[test]
    fn varbit_and_zero_threshold_round_trip() {
        let mut w = BitWriter::default();
        let ints = [
            0i64,
            1,
            -1,
            4,
            -3,
            5,
            32,
            -31,
            33,
            255,
            4096,
            -70000,
            1 << 40,
            i64::MIN,
            i64::MAX,
        ];
        let uints = [0u64, 1, 7, 8, 63, 64, 511, 4095, 1 << 20, 1 << 30, u64::MAX];
        for &v in &ints {
            w.varbit_int(v);
        }
        for &v in &uints {
            w.varbit_uint(v);
        }
        let zts = [
            0.0,
            2f64.powi(-128),
            2f64.powi(-243),
            2f64.powi(9),
            2f64.powi(10),
            0.3,
        ];
        for &z in &zts {
            zero_threshold(&mut w, z);
        }
        let mut r = Bits { b: &w.b, pos: 0 };
        for &v in &ints {
            assert_eq!(r.varbit_int().unwrap(), v);
        }
        for &v in &uints {
            assert_eq!(r.varbit_uint().unwrap(), v);
        }
        for &z in &zts {
            let got = match r.bits(8).unwrap() as u8 {
                0 => 0.0,
                255 => r.f64().unwrap(),
                b => 2f64.powi(b as i32 - 244),
            };
            assert_eq!(got, z);
        }
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
