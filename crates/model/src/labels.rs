//! Label sets.
//!
//! A [`Labels`] is sorted by name with unique names: equality, hashing and display
//! are then canonical, which is what storage and the query engine rely on.

use std::fmt;

use triomphe::ThinArc;

/// `__name__`: the metric name as a label.
pub const METRIC_NAME: &str = "__name__";
/// `__address__`: host:port of a target.
pub const ADDRESS: &str = "__address__";
/// `__scheme__`: http or https.
pub const SCHEME: &str = "__scheme__";
/// `__metrics_path__`: the path scraped.
pub const METRICS_PATH: &str = "__metrics_path__";
/// `__scrape_interval__` of a target, settable by relabeling.
pub const SCRAPE_INTERVAL: &str = "__scrape_interval__";
/// `__scrape_timeout__` of a target, settable by relabeling.
pub const SCRAPE_TIMEOUT: &str = "__scrape_timeout__";
/// A target's `scrape_native_histograms`, settable by relabeling (Prometheus 3.13).
pub const SCRAPE_NATIVE_HISTOGRAMS: &str = "__scrape_native_histograms__";
/// A target's `always_scrape_classic_histograms`, settable by relabeling (Prometheus 3.13).
pub const ALWAYS_SCRAPE_CLASSIC_HISTOGRAMS: &str = "__always_scrape_classic_histograms__";
/// A target's `convert_classic_histograms_to_nhcb`, settable by relabeling (Prometheus 3.13).
pub const CONVERT_CLASSIC_HISTOGRAMS_TO_NHCB: &str = "__convert_classic_histograms_to_nhcb__";
/// `__param_<name>`: URL parameters of a scrape.
pub const PARAM_PREFIX: &str = "__param_";
/// Labels starting with `__` are internal and removed after target relabeling.
pub const RESERVED_PREFIX: &str = "__";
/// `__meta_`: labels set by service discovery.
pub const META_PREFIX: &str = "__meta_";
pub const JOB: &str = "job";
pub const INSTANCE: &str = "instance";

/// One label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    pub name: String,
    pub value: String,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A borrowed label of a [`Labels`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelRef<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

impl LabelRef<'_> {
    pub fn to_label(&self) -> Label {
        Label::new(self.name, self.value)
    }
}

/// A label set sorted by name, names unique, no empty values (an empty value means
/// "label absent" in Prometheus's model). Immutable and shared: cloning is a reference-count
/// increment, so the scrape cache, the head's index and its series hold one copy.
///
/// The labels are packed into one allocation (each value as a varint length and its bytes,
/// each name likewise or, for the common names of [`KNOWN`], one byte), as Prometheus's
/// `stringlabels`: a series costs its text plus a few bytes, not two
/// `String`s (24 bytes and a heap block each) per label. The allocation starts with a hash of
/// the packed text, computed once: hash maps keyed by label sets (the head's label-set map,
/// aggregation groups) then hash 8 bytes, and equality compares the hashes before the texts.
/// The handle is one pointer (the length is in the allocation, and there is no weak count):
/// the head's series, the scrape cache and remote write's queues each hold one per series.
#[derive(Clone)]
pub struct Labels(ThinArc<u64, u8>);

impl PartialEq for Labels {
    fn eq(&self, o: &Labels) -> bool {
        self.same(o) || (self.0.header.header == o.0.header.header && self.0.slice == o.0.slice)
    }
}

impl Eq for Labels {}

/// The process's seed for label-set hashes (random per process, so crafted label values cannot
/// be chosen to collide).
fn hash_seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
    })
}

fn hash_packed(packed: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(hash_seed()).hash_one(packed)
}

impl std::hash::Hash for Labels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.cached_hash());
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

#[cfg(test)]
fn varint_len(n: usize) -> usize {
    (usize::BITS - (n | 1).leading_zeros()).div_ceil(7) as usize
}

thread_local! {
    /// Where a label set is packed before its allocation is made to measure.
    static PACKING: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Label names common enough to be stored as one byte, in every label set that has them:
/// Prometheus's own, and those of the usual exporters and client libraries (Kubernetes
/// objects, HTTP handlers, devices). Most series' names are all here, so a set of eight labels
/// costs its values and eight bytes for its names instead of some fifty. The list is fixed at
/// build time (never learnt from input), so the packed text of a label set, and the shard
/// derived from it, is the same in every process of one build. At most 64 names: an entry's
/// token, `2 * id + 1`, must stay one varint byte.
const KNOWN: [&str; 63] = [
    "__name__",
    "instance",
    "job",
    "le",
    "quantile",
    "code",
    "method",
    "handler",
    "path",
    "route",
    "status",
    "status_code",
    "service",
    "namespace",
    "pod",
    "container",
    "node",
    "endpoint",
    "image",
    "id",
    "name",
    "device",
    "mountpoint",
    "fstype",
    "cpu",
    "mode",
    "interface",
    "version",
    "app",
    "component",
    "cluster",
    "host",
    "uid",
    "phase",
    "reason",
    "condition",
    "resource",
    "unit",
    "type",
    "kind",
    "operation",
    "state",
    "scope",
    "verb",
    "group",
    "severity",
    "alertname",
    "alertstate",
    "result",
    "error",
    "client",
    "server",
    "protocol",
    "team",
    "env",
    "region",
    "zone",
    "owner_kind",
    "owner_name",
    "created_by_kind",
    "created_by_name",
    "deployment",
    "url",
];

/// Slots of [`KNOWN_TABLE`]: four per name, so a lookup rarely probes twice.
const KNOWN_SLOTS: usize = 256;

/// Where a name's probe starts: its length and three of its bytes (cheap, and enough to
/// spread these names; collisions only cost a probe).
const fn known_hash(b: &[u8]) -> usize {
    let n = b.len();
    (n * 31 + b[0] as usize * 7 + b[n - 1] as usize * 3 + b[n / 2] as usize) % KNOWN_SLOTS
}

/// An open-addressing table of [`KNOWN`]: `id + 1` per slot, 0 for none.
const KNOWN_TABLE: [u8; KNOWN_SLOTS] = {
    let mut t = [0u8; KNOWN_SLOTS];
    let mut id = 0;
    while id < KNOWN.len() {
        let mut h = known_hash(KNOWN[id].as_bytes());
        while t[h] != 0 {
            h = (h + 1) % KNOWN_SLOTS;
        }
        t[h] = id as u8 + 1;
        id += 1;
    }
    t
};

/// The id of `name` in [`KNOWN`].
fn known(name: &str) -> Option<usize> {
    let b = name.as_bytes();
    if b.is_empty() {
        return None;
    }
    let mut h = known_hash(b);
    loop {
        match KNOWN_TABLE[h] {
            0 => return None,
            k if KNOWN[k as usize - 1] == name => return Some(k as usize - 1),
            _ => h = (h + 1) % KNOWN_SLOTS,
        }
    }
}

/// Lay out `labels` as a label set's packed text in `buf`: each name as a varint token (`2 *
/// id + 1` for a [`KNOWN`] name, else twice its length followed by its bytes), each value as
/// a varint length and its bytes.
fn fill<'a>(buf: &mut Vec<u8>, labels: impl Iterator<Item = (&'a str, &'a str)>) {
    buf.clear();
    for (n, v) in labels {
        match known(n) {
            Some(id) => buf.push((id << 1 | 1) as u8),
            None => {
                put_varint(buf, n.len() << 1);
                buf.extend_from_slice(n.as_bytes());
            }
        }
        put_varint(buf, v.len());
        buf.extend_from_slice(v.as_bytes());
    }
}

/// Lay out `labels` in the thread's reused buffer and hand the packed text to `f` (a buffer of
/// its own if the thread's is in use, by an iterator building a label set of its own, or the
/// thread is ending).
fn with_packed<'a, R>(
    labels: impl Iterator<Item = (&'a str, &'a str)>,
    f: impl FnOnce(&[u8]) -> R,
) -> R {
    let mut labels = Some(labels);
    let mut f = Some(f);
    let done = PACKING
        .try_with(|b| {
            let mut buf = b.try_borrow_mut().ok()?;
            fill(&mut buf, labels.take()?);
            let out = (f.take()?)(&buf);
            // A huge label set's buffer is not kept for the thread's life.
            if buf.capacity() > 64 << 10 {
                *buf = Vec::new();
            }
            Some(out)
        })
        .ok()
        .flatten();
    done.unwrap_or_else(|| {
        let mut buf = Vec::new();
        fill(&mut buf, labels.take().into_iter().flatten());
        (f.take().expect("not called yet"))(&buf)
    })
}

/// Pack into one exact allocation (the text is laid out in a reused buffer first, so building
/// a label set costs a single allocation; queries build many).
fn pack<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>) -> ThinArc<u64, u8> {
    with_packed(labels, |buf| {
        ThinArc::from_header_and_slice(hash_packed(buf), buf)
    })
}

/// The labels of a [`Labels`], in name order.
#[derive(Clone)]
pub struct LabelsIter<'a> {
    rest: &'a [u8],
}

impl<'a> LabelsIter<'a> {
    fn varint(&mut self) -> usize {
        let mut n = 0usize;
        let mut shift = 0;
        loop {
            let b = self.rest[0];
            self.rest = &self.rest[1..];
            n |= ((b & 0x7f) as usize) << shift;
            if b & 0x80 == 0 {
                return n;
            }
            shift += 7;
        }
    }

    fn bytes(&mut self, n: usize) -> &'a str {
        let (s, rest) = self.rest.split_at(n);
        self.rest = rest;
        // SAFETY: every byte string in a Labels was copied from a &str by `fill`, whole.
        unsafe { std::str::from_utf8_unchecked(s) }
    }

    fn name(&mut self) -> &'a str {
        // A known name's token is one byte: read without the varint loop.
        let b = self.rest[0];
        if b & 1 == 1 {
            self.rest = &self.rest[1..];
            return KNOWN[(b >> 1) as usize];
        }
        let n = self.varint() >> 1;
        self.bytes(n)
    }

    fn value(&mut self) -> &'a str {
        let n = self.varint();
        self.bytes(n)
    }
}

impl<'a> Iterator for LabelsIter<'a> {
    type Item = LabelRef<'a>;
    fn next(&mut self) -> Option<LabelRef<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let name = self.name();
        let value = self.value();
        Some(LabelRef { name, value })
    }
}

impl Default for Labels {
    fn default() -> Self {
        Labels(pack(std::iter::empty()))
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Label by label, name then value: the order of a sorted list of pairs.
impl Ord for Labels {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.iter().cmp(other.iter())
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|l| (l.name, l.value)))
            .finish()
    }
}

impl Labels {
    pub fn empty() -> Self {
        Labels::default()
    }

    /// Build from pairs in any order. Later duplicates win; empty values are dropped.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut b = LabelsBuilder::new();
        for (n, v) in pairs {
            b.set(n.into(), v.into());
        }
        b.build()
    }

    /// Wrap labels already sorted by name with unique names (checked in debug builds).
    pub fn from_sorted(v: Vec<Label>) -> Self {
        debug_assert!(
            v.windows(2).all(|w| w[0].name < w[1].name),
            "labels not sorted/unique"
        );
        Labels(pack(v.iter().map(|l| (l.name.as_str(), l.value.as_str()))))
    }

    /// As [`from_sorted`](Self::from_sorted), from borrowed pairs.
    pub fn from_sorted_refs<'a, I>(v: I) -> Self
    where
        I: IntoIterator<Item = LabelRef<'a>>,
    {
        Labels(pack(v.into_iter().map(|l| (l.name, l.value))))
    }

    /// This label set without `name` (one allocation; the same set when it has no such label).
    pub fn without(&self, name: &str) -> Labels {
        if !self.has(name) {
            return self.clone();
        }
        Labels::from_sorted_refs(self.iter().filter(|l| l.name != name))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        for l in self.iter() {
            match l.name.cmp(name) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => return Some(l.value),
                std::cmp::Ordering::Greater => return None,
            }
        }
        None
    }

    /// Value of `name`, or "" when absent (Prometheus's convention).
    pub fn get_or_empty(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    pub fn iter(&self) -> LabelsIter<'_> {
        LabelsIter {
            rest: &self.0.slice,
        }
    }

    /// The hash computed when this label set was built (seeded per process).
    pub fn cached_hash(&self) -> u64 {
        self.0.header.header
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.slice.is_empty()
    }

    pub fn into_vec(self) -> Vec<Label> {
        self.iter().map(|l| l.to_label()).collect()
    }

    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder {
            labels: self.iter().map(|l| l.to_label()).collect(),
        }
    }

    /// Bytes held by this label set's allocation (its packed text, the reference count, the
    /// hash and the length).
    pub fn heap_bytes(&self) -> usize {
        self.0.slice.len() + 24
    }

    /// Whether both are the same allocation (a clone of one another), not only equal: a
    /// batch groups its samples by series this way without comparing label text.
    pub fn same(&self, o: &Labels) -> bool {
        self.0.ptr() == o.0.ptr()
    }

    /// The allocation's address: sorts a batch's samples by series (see [`Labels::same`]).
    pub fn addr(&self) -> usize {
        self.0.ptr() as usize
    }

    /// Whether another handle holds this label set's allocation too (a clone of the head's
    /// labels, say), so that dropping this handle frees nothing.
    pub fn is_shared(&self) -> bool {
        ThinArc::strong_count(&self.0) > 1
    }

    /// A stable 64-bit hash of the label set (FNV-1a over names and values with
    /// separators), used to identify series and spread work; not cryptographic.
    pub fn stable_hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: &[u8]| {
            for &x in b {
                h ^= x as u64;
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for l in self.iter() {
            eat(l.name.as_bytes());
            eat(&[0xff]);
            eat(l.value.as_bytes());
            eat(&[0xff]);
        }
        h
    }

    /// Which of `of` shards this label set belongs to. A fixed function of the label text (not
    /// the per-process cached hash): equal label sets get the same shard wherever they come
    /// from (head, blocks, memory), and a query's shards, hence the order in which a sharded
    /// `sum` adds its partial sums, are the same from one run to the next.
    pub fn shard(&self, of: usize) -> usize {
        if of <= 1 {
            return 0;
        }
        shard_of_packed(&self.0.slice, of)
    }

    /// [`Labels::shard`] of the set `pairs` (sorted by name, unique, as
    /// [`Labels::from_sorted_refs`] takes them) would make, without building it: a block read
    /// by several threads builds only its own shard's label sets.
    pub fn shard_of_refs<'a>(pairs: impl IntoIterator<Item = LabelRef<'a>>, of: usize) -> usize {
        if of <= 1 {
            return 0;
        }
        with_packed(pairs.into_iter().map(|l| (l.name, l.value)), |buf| {
            shard_of_packed(buf, of)
        })
    }
}

/// The shard (of `of`) of a label set's packed text.
fn shard_of_packed(packed: &[u8], of: usize) -> usize {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut words = packed.chunks_exact(8);
    for w in &mut words {
        let x = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        h = (h.rotate_left(23) ^ x).wrapping_mul(0xff51_afd7_ed55_8ccd);
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    h = (h.rotate_left(23) ^ u64::from_le_bytes(tail)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 29;
    ((h as u128 * of as u128) >> 64) as usize
}

impl<'a> IntoIterator for &'a Labels {
    type Item = LabelRef<'a>;
    type IntoIter = LabelsIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Formats as Prometheus does: `name{a="1", b="2"}` for a metric, `{a="1", b="2"}` without a name.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A name outside the classic set is quoted, and a metric name then goes inside the
        // braces, as Prometheus 3 writes them (`{"my.metric", "a.b"="c"}`).
        let mut first = true;
        let mut name = String::new();
        match self.metric_name() {
            Some(n) if crate::names::is_legacy_metric_name(n) => f.write_str(n)?,
            Some(n) => {
                f.write_str("{")?;
                f.write_str(&quote(n))?;
                first = false;
            }
            None => {}
        }
        if first {
            f.write_str("{")?;
        }
        for l in self.iter().filter(|l| l.name != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            name.clear();
            crate::names::write_label_name(&mut name, l.name);
            write!(f, "{}={}", name, quote(l.value))?;
        }
        f.write_str("}")
    }
}

/// Quote a label value as Go's `strconv.Quote` does.
pub fn quote(s: &str) -> String {
    quote_bytes(s.as_bytes())
}

/// Quote bytes as Go's `strconv.Quote`/`%q` does (invalid UTF-8 as `\x..` escapes), so
/// messages read like Prometheus's.
pub fn quote_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 2);
    out.push('"');
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\x07' => out.push_str("\\a"),
                '\x08' => out.push_str("\\b"),
                '\x0b' => out.push_str("\\v"),
                '\x0c' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    out.push_str(&format!("\\x{:02x}", c as u32));
                }
                c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        for &x in chunk.invalid() {
            out.push_str(&format!("\\x{x:02x}"));
        }
    }
    out.push('"');
    out
}

/// Mutable label set used while relabeling or building series.
#[derive(Debug, Clone, Default)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        LabelsBuilder {
            labels: Vec::with_capacity(n),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.labels[i].value.as_str())
    }

    /// Set `name` to `value`; an empty value deletes the label.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let name = name.into();
        let value = value.into();
        match self.labels.binary_search_by(|l| l.name.as_str().cmp(&name)) {
            Ok(i) if value.is_empty() => {
                self.labels.remove(i);
            }
            Ok(i) => self.labels[i].value = value,
            Err(_) if value.is_empty() => {}
            Err(i) => self.labels.insert(i, Label { name, value }),
        }
        self
    }

    pub fn del(&mut self, name: &str) -> &mut Self {
        if let Ok(i) = self.labels.binary_search_by(|l| l.name.as_str().cmp(name)) {
            self.labels.remove(i);
        }
        self
    }

    /// Keep only labels for which `f` is true.
    pub fn retain(&mut self, mut f: impl FnMut(&Label) -> bool) -> &mut Self {
        self.labels.retain(|l| f(l));
        self
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.labels.iter()
    }

    pub fn build(self) -> Labels {
        Labels::from_sorted(self.labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block's reader picks a series' shard from its pairs before building it: the shard
    /// must be the built set's, or a sharded query would lose or repeat series.
    #[test]
    fn a_shard_from_pairs_is_the_built_sets() {
        for i in 0..500 {
            let l = Labels::from_pairs([
                ("__name__", "m".to_string()),
                ("instance", format!("10.0.0.{i}:9100")),
                ("long", "x".repeat(i % 37)),
            ]);
            for of in [1, 2, 3, 8, 64] {
                assert_eq!(
                    Labels::shard_of_refs(l.iter(), of),
                    l.shard(of),
                    "{l:?} of {of}"
                );
            }
        }
        // Every shard is reached, so the test compares more than zeros.
        let hit: std::collections::HashSet<usize> = (0..100)
            .map(|i| Labels::shard_of_refs(Labels::from_pairs([("i", i.to_string())]).iter(), 4))
            .collect();
        assert_eq!(hit.len(), 4);
    }

    /// Every known name is found, once; names that are not (longer, shorter, prefixes, a
    /// different case, empty) are not.
    #[test]
    fn known_names_are_found_and_only_they() {
        let mut seen = std::collections::HashSet::new();
        for (id, n) in KNOWN.iter().enumerate() {
            assert!(seen.insert(*n), "{n} listed twice");
            assert_eq!(known(n), Some(id), "{n}");
        }
        for n in [
            "",
            "a",
            "jobs",
            "jo",
            "Job",
            "__name",
            "__name__x",
            "instance ",
            "le\0",
        ] {
            assert_eq!(known(n), None, "{n:?}");
        }
        // Tokens stay one varint byte.
        assert!(KNOWN.len() <= 64);
    }

    /// Known names cost one byte each; a set mixing them with others (short, long enough for
    /// a two-byte token, non-ASCII) reads back in name order, and compares, hashes, shards and
    /// orders as the same pairs do.
    #[test]
    fn known_and_other_names_round_trip() {
        let long = "n".repeat(64);
        let pairs = [
            ("__name__", "http_requests_total"),
            ("code", "200"),
            ("custom_label", "x"),
            ("instance", "10.0.0.1:8080"),
            ("job", "api"),
            (long.as_str(), "y"),
            ("é", "ü"),
        ];
        let l = Labels::from_pairs(pairs);
        let back: Vec<(&str, &str)> = l.iter().map(|x| (x.name, x.value)).collect();
        let mut want = pairs.to_vec();
        want.sort();
        assert_eq!(back, want);
        assert_eq!(l.get("code"), Some("200"));
        assert_eq!(l.get(&long), Some("y"));
        assert_eq!(l.get("custom_label"), Some("x"));
        assert_eq!(l.get("le"), None);
        assert_eq!(Labels::from_sorted(l.clone().into_vec()), l);
        assert_eq!(l.without("job").get("job"), None);
        assert_eq!(l.without("job").len(), 6);
        // Known names: one byte each (4 here); the others: token, then bytes.
        let values: usize = pairs.iter().map(|(_, v)| 1 + v.len()).sum();
        let others = (1 + "custom_label".len()) + (2 + 64) + (1 + "é".len());
        assert_eq!(l.heap_bytes(), 24 + values + 4 + others);
        // A known name sorts among the others by its text, not its token.
        let a = Labels::from_pairs([("job", "a")]);
        let b = Labels::from_pairs([("jo", "a")]);
        let c = Labels::from_pairs([("jobz", "a")]);
        assert!(b < a && a < c);
        assert_ne!(a, b);
    }

    #[test]
    fn builder_keeps_sorted_and_drops_empty() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("c", ""), ("b", "3")]);
        assert_eq!(l.iter().map(|l| l.name).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get("c"), None);
    }

    #[test]
    fn varint_lengths() {
        // Every varint width of a length, decoded back by iteration.
        for n in [1usize, 127, 128, 16383, 16384, 1 << 21] {
            let v = "x".repeat(n);
            let l = Labels::from_pairs([("a", v.clone()), ("b", "1".to_string())]);
            assert_eq!(
                (l.get("a"), l.get("b")),
                (Some(v.as_str()), Some("1")),
                "{n}"
            );
            assert_eq!(l.heap_bytes(), 24 + 2 + varint_len(n) + n + 4);
        }
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        assert_eq!(l.without("__name__"), Labels::from_pairs([("job", "a")]));
        assert_eq!(l.without("x"), l);
    }

    #[test]
    fn packed_labels_round_trip_and_order_as_pairs() {
        let long = "v".repeat(300);
        let l = Labels::from_pairs([("a", "1"), ("b", long.as_str()), ("é", "ü")]);
        assert_eq!(l.len(), 3);
        assert_eq!(l.get("b"), Some(long.as_str()));
        assert_eq!(l.get("é"), Some("ü"));
        assert_eq!(l.get("c"), None);
        assert_eq!(Labels::from_sorted(l.clone().into_vec()), l);
        // Order compares pairs, not bytes: ("a","1"),("b",..) < ("a","10").
        let x = Labels::from_pairs([("a", "1"), ("b", "z")]);
        let y = Labels::from_pairs([("a", "10")]);
        assert!(x < y);
        assert!(Labels::empty() < x);
        assert_eq!(format!("{x:?}"), r#"{"a": "1", "b": "z"}"#);
    }

    /// Building a label set while another is being packed (an iterator that builds one per
    /// item) works, with the same result as building them apart.
    #[test]
    fn packing_inside_packing() {
        let mut inner = Vec::new();
        let lazy = Labels::from_sorted_refs([("a", "1"), ("b", "2")].into_iter().map(|(n, v)| {
            inner.push(Labels::from_pairs([("y", v)]));
            LabelRef { name: n, value: v }
        }));
        let apart = Labels::from_pairs([("a", "1"), ("b", "2")]);
        assert_eq!(lazy, apart);
        assert_eq!(lazy.cached_hash(), apart.cached_hash());
        assert_eq!(
            inner,
            [
                Labels::from_pairs([("y", "1")]),
                Labels::from_pairs([("y", "2")])
            ]
        );
    }

    #[test]
    fn display_matches_prometheus() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a\"b"), ("instance", "x:1")]);
        assert_eq!(l.to_string(), r#"up{instance="x:1", job="a\"b"}"#);
    }

    #[test]
    fn name_validity() {
        assert!(crate::names::is_legacy_label_name("_a1"));
        assert!(!crate::names::is_legacy_label_name("1a"));
        assert!(!crate::names::is_legacy_label_name("a:b"));
        assert!(crate::names::is_legacy_metric_name("a:b"));
        assert!(!crate::names::is_legacy_metric_name(""));
    }
}
