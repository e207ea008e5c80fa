//! Snappy block framing of protobuf bodies, as remote write and remote read carry them.

use prost::Message;

/// The most a decompressed body may be: a request claiming more is refused before any
/// allocation (snappy's header states the length).
pub const MAX_DECODED_BYTES: usize = 64 << 20;

/// Snappy-compress `msg`'s encoding.
pub fn encode<M: Message>(msg: &M) -> Vec<u8> {
    compress(&msg.encode_to_vec())
}

/// Snappy block-compress an already encoded message.
pub fn compress(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .expect("snappy compresses any input")
}

/// Decompress a snappy block and decode `M`, naming what was wrong.
pub fn decode<M: Message + Default>(body: &[u8]) -> Result<M, String> {
    decode_limited(body, MAX_DECODED_BYTES)
}

/// As [`decode`], with at most `limit` bytes decompressed.
pub fn decode_limited<M: Message + Default>(body: &[u8], limit: usize) -> Result<M, String> {
    let raw = decompress_limited(body, limit)?;
    M::decode(raw.as_slice()).map_err(|e| format!("protobuf: {e}"))
}

/// A snappy block body decompressed (at most the receiver's limit), for a decoder that
/// borrows from it.
pub fn decompress(body: &[u8]) -> Result<Vec<u8>, String> {
    decompress_limited(body, MAX_DECODED_BYTES)
}

fn decompress_limited(body: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let len = snap::raw::decompress_len(body).map_err(|e| format!("snappy: {e}"))?;
    if len > limit {
        return Err(format!(
            "snappy: decoded body of {len} bytes is larger than the {limit} allowed"
        ));
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("snappy: {e}"))
}
