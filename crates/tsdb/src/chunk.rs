//! Compressed chunks of float samples, in the encoding of Prometheus's XOR chunks
//! (Facebook's Gorilla paper): timestamps as delta-of-delta in variable bit widths, values
//! XOR'd with their predecessor storing only the meaningful bits.
//!
//! Layout: `u16` big-endian sample count, then a bit stream: first timestamp (zig-zag varint),
//! first value (64 bits), second timestamp delta (varint), second value XOR; then per sample
//! a delta-of-delta code (`0`, `10`+14 bits, `110`+17, `1110`+20, `1111`+64) and a value code
//! (`0` same value, `10` XOR within the previous leading/trailing window, `11` + 5 bits
//! leading zeros + 6 bits significant length + bits).

use vigil_model::Sample;

/// Appends bits to a byte vector.
#[derive(Debug, Clone, Default)]
struct BitWriter {
    bytes: Vec<u8>,
    /// Bits still free in the last byte (0 = need a new byte).
    free: u8,
}

/// Bytes a chunk's buffer starts with: a chunk's first sample takes 9-18 bytes and the next
/// few 1-4 each, so growing from Vec's default of 8 reallocated three or four times in a
/// chunk's first samples (a tenth of a million-series import's time).
const FIRST_BYTES: usize = 32;

impl BitWriter {
    fn new_byte(&mut self) {
        if self.bytes.capacity() == 0 {
            self.bytes.reserve_exact(FIRST_BYTES);
        }
        self.bytes.push(0);
        self.free = 8;
    }

    fn write_bit(&mut self, bit: bool) {
        if self.free == 0 {
            self.new_byte();
        }
        if bit {
            let last = self.bytes.len() - 1;
            self.bytes[last] |= 1 << (self.free - 1);
        }
        self.free -= 1;
    }

    /// Write the low `n` bits of `v`, most significant first, a byte at a time.
    fn write_bits(&mut self, v: u64, mut n: u8) {
        while n > 0 {
            if self.free == 0 {
                self.new_byte();
            }
            let take = n.min(self.free);
            let bits = ((v >> (n - take)) & ((1u64 << take) - 1)) as u8;
            let last = self.bytes.len() - 1;
            self.bytes[last] |= bits << (self.free - take);
            self.free -= take;
            n -= take;
        }
    }

    fn write_uvarint(&mut self, mut v: u64) {
        loop {
            let mut b = (v & 0x7f) as u8;
            v >>= 7;
            if v != 0 {
                b |= 0x80;
            }
            self.write_bits(b as u64, 8);
            if v == 0 {
                break;
            }
        }
    }

    fn write_varint(&mut self, v: i64) {
        self.write_uvarint(((v << 1) ^ (v >> 63)) as u64);
    }
}

/// Reads bits from a byte slice.
struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn read_bit(&mut self) -> Option<bool> {
        let byte = *self.bytes.get(self.pos / 8)?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1 == 1;
        self.pos += 1;
        Some(bit)
    }

    /// Read `n` bits, most significant first, a byte at a time.
    fn read_bits(&mut self, mut n: u8) -> Option<u64> {
        let mut v = 0u64;
        while n > 0 {
            let byte = *self.bytes.get(self.pos / 8)?;
            let used = (self.pos % 8) as u8;
            let avail = 8 - used;
            let take = n.min(avail);
            let bits = (byte >> (avail - take)) & (((1u16 << take) - 1) as u8);
            v = (v << take) | bits as u64;
            self.pos += take as usize;
            n -= take;
        }
        Some(v)
    }

    fn read_uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.read_bits(8)?;
            v |= (b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn read_varint(&mut self) -> Option<i64> {
        let u = self.read_uvarint()?;
        Some((u >> 1) as i64 ^ -((u & 1) as i64))
    }
}

/// An appendable XOR chunk.
#[derive(Debug, Clone, Default)]
pub struct XorChunk {
    bw: BitWriter,
    count: u16,
    t: i64,
    t_delta: i64,
    v: u64,
    leading: u8,
    trailing: u8,
}

/// Samples per chunk before a new one is cut, as Prometheus.
pub const SAMPLES_PER_CHUNK: u16 = 120;

impl XorChunk {
    pub fn new() -> Self {
        XorChunk {
            leading: 0xff,
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Timestamp of the newest sample.
    pub fn max_time(&self) -> Option<i64> {
        (self.count > 0).then_some(self.t)
    }

    /// Append a sample; the caller guarantees `t` is after the previous one.
    pub fn append(&mut self, t: i64, v: f64) {
        let vb = v.to_bits();
        match self.count {
            0 => {
                self.bw.write_varint(t);
                self.bw.write_bits(vb, 64);
            }
            1 => {
                let d = t.wrapping_sub(self.t);
                self.bw.write_uvarint(d as u64);
                self.write_value(vb);
                self.t_delta = d;
            }
            _ => {
                let d = t.wrapping_sub(self.t);
                let dod = d.wrapping_sub(self.t_delta);
                match dod {
                    0 => self.bw.write_bit(false),
                    -8191..=8192 => {
                        self.bw.write_bits(0b10, 2);
                        self.bw.write_bits(dod as u64 & ((1 << 14) - 1), 14);
                    }
                    -65535..=65536 => {
                        self.bw.write_bits(0b110, 3);
                        self.bw.write_bits(dod as u64 & ((1 << 17) - 1), 17);
                    }
                    -524_287..=524_288 => {
                        self.bw.write_bits(0b1110, 4);
                        self.bw.write_bits(dod as u64 & ((1 << 20) - 1), 20);
                    }
                    _ => {
                        self.bw.write_bits(0b1111, 4);
                        self.bw.write_bits(dod as u64, 64);
                    }
                }
                self.write_value(vb);
                self.t_delta = d;
            }
        }
        self.t = t;
        self.v = vb;
        self.count += 1;
    }

    fn write_value(&mut self, vb: u64) {
        let x = vb ^ self.v;
        if x == 0 {
            self.bw.write_bit(false);
            return;
        }
        self.bw.write_bit(true);
        let mut leading = x.leading_zeros() as u8;
        let trailing = x.trailing_zeros() as u8;
        if leading >= 32 {
            leading = 31; // 5 bits hold it
        }
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            self.bw.write_bit(false);
            let sig = 64 - self.leading - self.trailing;
            self.bw.write_bits(x >> self.trailing, sig);
        } else {
            self.leading = leading;
            self.trailing = trailing;
            self.bw.write_bit(true);
            self.bw.write_bits(leading as u64, 5);
            let sig = 64 - leading - trailing;
            // 64 significant bits are written as 0 in 6 bits.
            self.bw.write_bits((sig % 64) as u64, 6);
            self.bw.write_bits(x >> trailing, sig);
        }
    }

    /// The encoded chunk: count then bit stream.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.bw.bytes.len());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.bw.bytes);
        out
    }

    /// Bytes used in memory by the encoded data.
    pub fn encoded_len(&self) -> usize {
        2 + self.bw.bytes.len()
    }

    pub fn iter(&self) -> XorIter<'_> {
        XorIter::over(&self.bw.bytes, self.count)
    }

    /// The whole appender state (bit stream, free bits, count, last time, delta and value,
    /// leading and trailing zeros): a head snapshot resumes appending exactly where it was.
    pub(crate) fn put_state(&self, p: &mut Vec<u8>) {
        use crate::encoding::{put_uvarint, put_varint};
        put_uvarint(p, self.bw.bytes.len() as u64);
        p.extend_from_slice(&self.bw.bytes);
        p.push(self.bw.free);
        put_uvarint(p, u64::from(self.count));
        put_varint(p, self.t);
        put_varint(p, self.t_delta);
        p.extend_from_slice(&self.v.to_le_bytes());
        p.push(self.leading);
        p.push(self.trailing);
    }

    /// What [`XorChunk::put_state`] wrote; None if it is not a state an append can go on from.
    pub(crate) fn read_state(d: &mut crate::encoding::Dec<'_>) -> Option<XorChunk> {
        let n = usize::try_from(d.uvarint()?).ok()?;
        let bytes = d.bytes(n)?.to_vec();
        let free = d.u8()?;
        let count = u16::try_from(d.uvarint()?).ok()?;
        let t = d.varint()?;
        let t_delta = d.varint()?;
        let v = d.le64()?;
        let leading = d.u8()?;
        let trailing = d.u8()?;
        // What `write_value` and `write_bits` would shift by must stay in range.
        let window = leading == 0xff || (leading < 32 && trailing < 64 && leading + trailing < 64);
        let sane = free < 8 && (count == 0) == bytes.is_empty() && (free == 0 || n > 0);
        (window && sane).then(|| {
            let mut bytes = bytes;
            bytes.reserve(FIRST_BYTES.saturating_sub(bytes.len()));
            XorChunk {
                bw: BitWriter { bytes, free },
                count,
                t,
                t_delta,
                v,
                leading,
                trailing,
            }
        })
    }
}

/// Decodes samples of an encoded chunk.
pub struct XorIter<'a> {
    br: BitReader<'a>,
    remaining: u16,
    read: u16,
    t: i64,
    t_delta: i64,
    v: u64,
    leading: u8,
    trailing: u8,
}

impl<'a> XorIter<'a> {
    fn over(stream: &'a [u8], count: u16) -> Self {
        XorIter {
            br: BitReader {
                bytes: stream,
                pos: 0,
            },
            remaining: count,
            read: 0,
            t: 0,
            t_delta: 0,
            v: 0,
            leading: 0,
            trailing: 0,
        }
    }

    /// The sample count a chunk from [`XorChunk::bytes`] says it holds (0 if too short).
    pub fn count_of(b: &[u8]) -> usize {
        b.get(..2)
            .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]) as usize)
    }

    /// Decode a chunk as produced by [`XorChunk::bytes`]. `None` if it is too short.
    pub fn from_bytes(b: &'a [u8]) -> Option<Self> {
        let count = u16::from_be_bytes([*b.first()?, *b.get(1)?]);
        Some(Self::over(&b[2..], count))
    }

    fn read_value(&mut self) -> Option<()> {
        if !self.br.read_bit()? {
            return Some(());
        }
        if self.br.read_bit()? {
            self.leading = self.br.read_bits(5)? as u8;
            let mut sig = self.br.read_bits(6)? as u8;
            if sig == 0 {
                sig = 64;
            }
            // Damaged data can claim more than 64 bits.
            self.trailing = 64u8.checked_sub(self.leading + sig)?;
        }
        let sig = 64 - self.leading - self.trailing;
        let bits = self.br.read_bits(sig)?;
        self.v ^= bits << self.trailing;
        Some(())
    }

    fn step(&mut self) -> Option<Sample> {
        match self.read {
            0 => {
                self.t = self.br.read_varint()?;
                self.v = self.br.read_bits(64)?;
            }
            1 => {
                self.t_delta = self.br.read_uvarint()? as i64;
                self.t = self.t.wrapping_add(self.t_delta);
                self.read_value()?;
            }
            _ => {
                let mut prefix = 0u8;
                for _ in 0..4 {
                    if !self.br.read_bit()? {
                        break;
                    }
                    prefix += 1;
                }
                let dod = match prefix {
                    0 => 0,
                    1 => sign_extend(self.br.read_bits(14)?, 14),
                    2 => sign_extend(self.br.read_bits(17)?, 17),
                    3 => sign_extend(self.br.read_bits(20)?, 20),
                    _ => self.br.read_bits(64)? as i64,
                };
                self.t_delta = self.t_delta.wrapping_add(dod);
                self.t = self.t.wrapping_add(self.t_delta);
                self.read_value()?;
            }
        }
        self.read += 1;
        Some(Sample {
            t: self.t,
            v: f64::from_bits(self.v),
        })
    }
}

/// Decode a `bits`-wide delta-of-delta. The writer's ranges are `-(2^(bits-1) - 1) ..=
/// 2^(bits-1)` (as Prometheus), so the all-high-bit pattern means +2^(bits-1), not its
/// two's-complement negative.
fn sign_extend(v: u64, bits: u32) -> i64 {
    if v > 1 << (bits - 1) {
        v as i64 - (1i64 << bits)
    } else {
        v as i64
    }
}

impl Iterator for XorIter<'_> {
    type Item = Sample;
    fn next(&mut self) -> Option<Sample> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        match self.step() {
            Some(s) => Some(s),
            None => {
                self.remaining = 0; // truncated data: stop rather than return garbage
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Damaged data may end early, so the count is only an upper bound.
        (0, Some(self.remaining as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_model::STALE_NAN;

    fn roundtrip(samples: &[(i64, f64)]) {
        let mut c = XorChunk::new();
        for &(t, v) in samples {
            c.append(t, v);
        }
        let got: Vec<Sample> = c.iter().collect();
        let bytes = c.bytes();
        let got2: Vec<Sample> = XorIter::from_bytes(&bytes).unwrap().collect();
        assert_eq!(got.len(), samples.len());
        for ((a, b), &(t, v)) in got.iter().zip(&got2).zip(samples) {
            assert_eq!(a.t, t);
            assert_eq!(
                a.v.to_bits(),
                v.to_bits(),
                "bit-exact values, NaNs included"
            );
            assert_eq!(a.t, b.t);
            assert_eq!(a.v.to_bits(), b.v.to_bits());
        }
    }

    #[test]
    fn delta_of_delta_at_each_range_edge() {
        // dod values exactly at the top of each bit range (found by fuzzing the block codec).
        for dod in [
            8192i64, -8191, 65536, -65535, 524_288, -524_287, 524_289, -524_288,
        ] {
            let base = 1_000_000i64;
            roundtrip(&[
                (0, 1.0),
                (base, 2.0),
                (2 * base + dod, 3.0),
                (3 * base + dod, 4.0),
            ]);
        }
    }

    #[test]
    fn regular_scrapes_compress_well() {
        let s: Vec<(i64, f64)> = (0..120)
            .map(|i| (1_700_000_000_000 + i * 15_000, 100.0 + (i % 3) as f64))
            .collect();
        roundtrip(&s);
        let mut c = XorChunk::new();
        for &(t, v) in &s {
            c.append(t, v);
        }
        assert!(
            c.encoded_len() < 120 * 3,
            "{} bytes for 120 samples",
            c.encoded_len()
        );
    }

    #[test]
    fn every_dod_bucket_and_special_values() {
        let mut t = -5_000i64;
        let mut s = vec![];
        for (i, d) in [1, 1, 9000, 9000, 70_000, 600_000, 10_000_000_000, 1, 3, 2]
            .iter()
            .enumerate()
        {
            t += d;
            let v = match i % 5 {
                0 => f64::NAN,
                1 => STALE_NAN,
                2 => f64::INFINITY,
                3 => -0.0,
                _ => 1e-300 * i as f64,
            };
            s.push((t, v));
        }
        roundtrip(&s);
    }

    #[test]
    fn pseudo_random_values_roundtrip() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut s = vec![];
        let mut t = 0;
        for _ in 0..1000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            t += (x % 20_000) as i64 + 1;
            s.push((t, f64::from_bits(x)));
        }
        for w in s.chunks(120) {
            roundtrip(w);
        }
    }

    #[test]
    fn truncated_bytes_do_not_panic() {
        let mut c = XorChunk::new();
        for i in 0..50 {
            c.append(i * 1000, i as f64 * 1.5);
        }
        let b = c.bytes();
        for cut in 0..b.len() {
            if let Some(it) = XorIter::from_bytes(&b[..cut]) {
                assert!(it.count() <= 50);
            }
        }
    }
}
