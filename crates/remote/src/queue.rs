//! One remote write endpoint: a reader thread follows the storage's journal (the WAL), turns
//! each sample of a kept series into a queue entry, and shards (tokio tasks, one connection's
//! worth of work each) batch and send them. A series always goes to the same shard, so its
//! samples arrive in order. When the receiver is down, shards retry with backoff, their
//! queues fill and the reader stops reading: the WAL is the buffer, so nothing acknowledged
//! locally is lost, and the position of the last sample every shard has delivered is saved,
//! so a restart resumes there.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use vigil_config::RemoteWriteConfig;
use vigil_model::Labels;
use vigil_scrape::client::PostError;
use vigil_storage::{Journal, JournalPos, JournalRecord};

/// Counters of one queue, exported as `prometheus_remote_storage_*`.
#[derive(Default)]
pub struct Stats {
    pub samples_in: AtomicU64,
    /// Metadata entries sent, refused or given up, retried; bytes of metadata requests.
    pub metadata_sent: AtomicU64,
    pub metadata_failed: AtomicU64,
    pub metadata_retried: AtomicU64,
    pub metadata_bytes: AtomicU64,
    /// Series in the reader's ref → labels map.
    pub series_tracked: AtomicU64,
    pub samples_sent: AtomicU64,
    pub samples_failed: AtomicU64,
    pub samples_retried: AtomicU64,
    pub samples_dropped: AtomicU64,
    pub samples_pending: AtomicU64,
    /// `send_exemplars`: exemplars read, sent, refused or given up, retried, dropped by
    /// relabelling, pending.
    pub exemplars_in: AtomicU64,
    pub exemplars_sent: AtomicU64,
    pub exemplars_failed: AtomicU64,
    pub exemplars_retried: AtomicU64,
    pub exemplars_dropped: AtomicU64,
    pub exemplars_pending: AtomicU64,
    /// `send_native_histograms`: histogram samples read, sent, refused or given up, retried,
    /// dropped by relabelling, pending.
    pub histograms_in: AtomicU64,
    pub histograms_sent: AtomicU64,
    pub histograms_failed: AtomicU64,
    pub histograms_retried: AtomicU64,
    pub histograms_dropped: AtomicU64,
    pub histograms_pending: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub batches: AtomicU64,
    /// Microseconds spent in successful sends.
    pub send_micros: AtomicU64,
    pub highest_in_ms: AtomicU64,
    pub highest_sent_ms: AtomicU64,
    pub shards: AtomicU64,
    pub shards_desired: AtomicU64,
    pub current_segment: AtomicU64,
    /// The WAL segment of the saved position: every segment before it is delivered (what an
    /// agent may truncate). 0 until something is.
    pub delivered_segment: AtomicU64,
    pub gaps: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

/// A sample (or, with `send_exemplars`, an exemplar) on its way: which series (its wire
/// labels, shared) and the record it came from.
#[derive(Clone)]
struct Entry {
    /// The series' labels as sent: usually the very label set the head holds (the journal
    /// hands out the head's), so a queue keeps no copy of its own; encoded per batch.
    labels: Labels,
    t: i64,
    v: f64,
    seq: u64,
    /// `None` for a float sample; an exemplar or a native histogram otherwise. Boxed so a
    /// sample's entry grows by one pointer only.
    extra: Option<Box<Extra>>,
}

/// What an entry carries besides a float sample.
#[derive(Clone)]
enum Extra {
    /// An exemplar's labels, encoded as `Exemplar.labels` fields (its value is `Entry::v`).
    Exemplar(Vec<u8>),
    /// A native histogram sample, encoded as a whole `Histogram` message (1.0's and 2.0's
    /// share their fields), its timestamp included.
    Histogram(Vec<u8>),
}

impl Entry {
    fn is_sample(&self) -> bool {
        self.extra.is_none()
    }

    fn exemplar(&self) -> Option<&[u8]> {
        match self.extra.as_deref() {
            Some(Extra::Exemplar(x)) => Some(x),
            _ => None,
        }
    }

    fn histogram(&self) -> Option<&[u8]> {
        match self.extra.as_deref() {
            Some(Extra::Histogram(x)) => Some(x),
            _ => None,
        }
    }
}

/// Whether `e` belongs in the same TimeSeries as the entries before it, whose kind (float or
/// histogram, once one is seen) is `kind`; exemplars go with either.
fn run_continues(kind: &mut Option<bool>, e: &Entry) -> bool {
    let k = match e.extra.as_deref() {
        None => false,
        Some(Extra::Histogram(_)) => true,
        Some(Extra::Exemplar(_)) => return true,
    };
    match *kind {
        Some(prev) if prev != k => false,
        _ => {
            *kind = Some(k);
            true
        }
    }
}

/// How many of `entries` are float samples, native histograms and exemplars.
fn kinds<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> (u64, u64, u64) {
    let mut k = (0, 0, 0);
    for e in entries {
        match e.extra.as_deref() {
            None => k.0 += 1,
            Some(Extra::Histogram(_)) => k.1 += 1,
            Some(Extra::Exemplar(_)) => k.2 += 1,
        }
    }
    k
}

/// One shard's side as the reader sees it.
struct ShardHandle {
    /// Entries go over in chunks (one per record and shard, at most a batch each): a channel
    /// operation per sample cost more than the rest of the reader's work.
    tx: tokio::sync::mpsc::Sender<Vec<Entry>>,
    /// Entries given to the shard and not yet sent or given up.
    pending: Arc<AtomicU64>,
    /// The `seq` of the newest entry the shard has finished with.
    done_seq: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

/// A running queue.
pub struct Queue {
    pub name: String,
    pub url: String,
    pub cfg: RemoteWriteConfig,
    pub stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    /// Set when the flush deadline passes: shards stop retrying and leave the rest unsent.
    abandon: Arc<AtomicBool>,
    reader: Mutex<Option<std::thread::JoinHandle<()>>>,
    metadata: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Queue {
    /// Start following `journal` for `cfg`. `position_file` holds where a previous run got
    /// to; without it only samples from now on are sent (Prometheus's rule).
    pub fn start(
        name: String,
        cfg: RemoteWriteConfig,
        external: Labels,
        journal: Arc<dyn Journal>,
        position_file: PathBuf,
        rt: tokio::runtime::Handle,
        metadata: Option<crate::metadata::MetadataSource>,
    ) -> Result<Arc<Queue>, String> {
        let client = Arc::new(
            vigil_scrape::client::Scraper::with_http(
                &cfg.http_client,
                &[],
                vigil_config::NameEscaping::AllowUtf8,
                false,
                0,
            )
            .map_err(|e| format!("remote_write {name:?}: {e}"))?,
        );
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let abandon = Arc::new(AtomicBool::new(false));
        let q = Arc::new(Queue {
            name: name.clone(),
            url: vigil_config::mask_url(&cfg.url),
            cfg: cfg.clone(),
            stats: stats.clone(),
            stop: stop.clone(),
            abandon: abandon.clone(),
            reader: Mutex::new(None),
            metadata: Mutex::new(None),
        });
        // Metadata goes beside the samples for 1.0, and in each series for 2.0.
        let families = match metadata.filter(|_| cfg.send_metadata) {
            Some(source) if cfg.protobuf_message == V2_MESSAGE => {
                let map = crate::metadata::FamilyMap::default();
                *q.metadata.lock() = Some(rt.spawn(crate::metadata::refresh(
                    cfg.metadata_send_interval,
                    source,
                    map.clone(),
                    stop.clone(),
                )));
                Some(map)
            }
            Some(source) => {
                *q.metadata.lock() = Some(rt.spawn(crate::metadata::run(
                    cfg.clone(),
                    client.clone(),
                    source,
                    stats.clone(),
                    stop.clone(),
                )));
                None
            }
            None => None,
        };
        let resume = read_position(&position_file);
        if let Some(p) = resume {
            stats.delivered_segment.store(p.segment, Ordering::SeqCst);
        }
        let start_ms = now_ms();
        let th = std::thread::Builder::new()
            .name(format!("remote-write-{name}"))
            .spawn(move || {
                // Only with the feature: a WAL an earlier run wrote with it may still hold
                // metadata records, which a run without it does not send.
                let series_meta = (cfg.send_metadata
                    && cfg.protobuf_message == V2_MESSAGE
                    && vigil_config::metadata_wal_records())
                .then(crate::metadata::SeriesMap::default);
                let mut r = ReaderLoop {
                    cfg,
                    families,
                    series_meta,
                    external,
                    client,
                    stats,
                    stop,
                    abandon,
                    rt,
                    series: HashMap::new(),
                    shards: Vec::new(),
                    seq: 0,
                    positions: VecDeque::new(),
                    position_file,
                    resume,
                    start_ms,
                    reached_start: false,
                    saved: resume,
                    written: resume,
                    last_save: Instant::now(),
                    last_reshard: Instant::now(),
                    in_at_reshard: 0,
                    ceiling: None,
                };
                // Opening reads the checkpoint's series: on this thread, not the reload's.
                let mut reader = loop {
                    match journal.follow() {
                        Ok(r) => break r,
                        Err(e) => {
                            tracing::error!(err = %e, "Remote write: cannot open the WAL; retrying");
                            *r.stats.last_error.lock() = Some(e.to_string());
                            if r.stop.load(Ordering::SeqCst) {
                                return;
                            }
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    }
                };
                r.run(&mut *reader);
            });
        let th = match th {
            Ok(th) => th,
            Err(e) => {
                // No reader: nothing else of this queue may keep running.
                q.stop.store(true, Ordering::SeqCst);
                if let Some(m) = q.metadata.lock().take() {
                    m.abort();
                }
                return Err(format!("remote_write {name:?}: {e}"));
            }
        };
        *q.reader.lock() = Some(th);
        Ok(q)
    }

    /// Stop reading, let the shards deliver what they hold (up to `flush` long), save the
    /// position.
    pub fn stop(&self, flush: Duration) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(m) = self.metadata.lock().take() {
            m.abort();
        }
        let deadline = Instant::now() + flush;
        let reader = self.reader.lock().take();
        // The reader sees `stop`, lets its shards deliver what they hold, saves its position
        // and ends. Past the deadline, shards still retrying give up, leaving the rest unsent.
        while reader.as_ref().is_some_and(|r| !r.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let left = self.stats.samples_pending.load(Ordering::Relaxed)
            + self.stats.exemplars_pending.load(Ordering::Relaxed);
        if reader.as_ref().is_some_and(|r| !r.is_finished()) {
            tracing::warn!(queue = %self.name, samples = left, deadline = ?flush, "Remote write: flush deadline reached; the unsent samples stay in the WAL for the next start");
        }
        self.abandon.store(true, Ordering::SeqCst);
        if let Some(t) = reader {
            let _ = t.join();
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn read_position(f: &PathBuf) -> Option<JournalPos> {
    let s = std::fs::read_to_string(f).ok()?;
    let (a, b) = s.trim().split_once(' ')?;
    Some(JournalPos {
        segment: a.parse().ok()?,
        offset: b.parse().ok()?,
    })
}

/// Write the position atomically (temp file synced, then renamed): a crash or a power loss
/// leaves the old or the new one, never an empty file (which reads as no position).
fn write_position(f: &PathBuf, p: JournalPos) {
    use std::io::Write;
    let tmp = f.with_extension("tmp");
    let ok = std::fs::File::create(&tmp)
        .and_then(|mut w| {
            w.write_all(format!("{} {}\n", p.segment, p.offset).as_bytes())?;
            w.sync_data()
        })
        .and_then(|_| std::fs::rename(&tmp, f));
    if let Err(e) = ok {
        tracing::warn!(file = %f.display(), err = %e, "Remote write: cannot save the sent position");
    }
}

/// A series' labels as sent (shared by its queue entries; their cached hash picks the shard).
type WireSeries = Labels;

struct ReaderLoop {
    cfg: RemoteWriteConfig,
    /// Remote write 2.0 with metadata: each series' family metadata.
    families: Option<crate::metadata::FamilyMap>,
    /// Remote write 2.0 with metadata: series' own, from the WAL's metadata records.
    series_meta: Option<crate::metadata::SeriesMap>,
    external: Labels,
    client: Arc<vigil_scrape::client::Scraper>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    abandon: Arc<AtomicBool>,
    rt: tokio::runtime::Handle,
    /// Series ref → wire labels after external labels and `write_relabel_configs` (None:
    /// dropped by relabelling).
    /// With the segment of the record that named it, to forget it once the WAL is truncated
    /// past that segment and it is not live.
    series: HashMap<u64, (Option<WireSeries>, u64)>,
    shards: Vec<ShardHandle>,
    /// Sequence number of the last record whose samples were all queued.
    seq: u64,
    /// (seq, position after that record), oldest first, for records not yet known delivered.
    positions: VecDeque<(u64, JournalPos)>,
    position_file: PathBuf,
    /// Samples of records at or before this position were sent by an earlier run.
    resume: Option<JournalPos>,
    start_ms: i64,
    /// A fresh queue (no saved position) has read a sample written since it started: the
    /// exemplar records after it are new too. Exemplars carry their own (trace) times, so
    /// unlike samples they cannot be told new by their timestamps.
    reached_start: bool,
    saved: Option<JournalPos>,
    /// The position last written to the file.
    written: Option<JournalPos>,
    last_save: Instant,
    last_reshard: Instant,
    in_at_reshard: u64,
    /// Records after this `seq` were not all delivered by shards that ended early.
    ceiling: Option<u64>,
}

impl ReaderLoop {
    fn run(&mut self, reader: &mut dyn vigil_storage::JournalReader) {
        let n = self.cfg.queue_config.min_shards.max(1) as usize;
        self.start_shards(n);
        let mut buf: Vec<(JournalRecord, JournalPos)> = Vec::new();
        while !self.stop.load(Ordering::SeqCst) {
            buf.clear();
            // A few records at a time: each may be a whole scrape's samples (a 10k-series
            // target's is 240 KB decoded), and 64 at once held 15 MB during catch-up.
            let got = reader.poll(8, &mut |r, p| buf.push((r, p)));
            match got {
                Ok(p) => {
                    self.stats.gaps.fetch_add(p.gaps, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::error!(err = %e, "Remote write: reading the WAL failed; retrying");
                    *self.stats.last_error.lock() = Some(e.to_string());
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            }
            let idle = buf.is_empty();
            for (rec, pos) in std::mem::take(&mut buf) {
                if self.stop.load(Ordering::SeqCst) {
                    break;
                }
                self.stats
                    .current_segment
                    .store(pos.segment, Ordering::Relaxed);
                match rec {
                    JournalRecord::Series(s) => {
                        for (r, ls) in s {
                            let v = self.prepare(&ls);
                            match self.series.get_mut(&r) {
                                // Named again (after a gap, or by a checkpoint): keep the label
                                // set entries already hold, so a batch groups the series whole
                                // and sends its samples in order.
                                Some((old, seg)) if *old == v => *seg = pos.segment,
                                _ => {
                                    self.series.insert(r, (v, pos.segment));
                                }
                            }
                        }
                        self.stats
                            .series_tracked
                            .store(self.series.len() as u64, Ordering::Relaxed);
                    }
                    JournalRecord::Live { segment, series } => {
                        // The log was truncated through `segment`: series named there and
                        // not live any more will not be referred to again.
                        let live: std::collections::HashSet<u64> = series.into_iter().collect();
                        self.series
                            .retain(|r, (_, named_in)| *named_in > segment || live.contains(r));
                        self.forget_metadata();
                        self.stats
                            .series_tracked
                            .store(self.series.len() as u64, Ordering::Relaxed);
                    }
                    JournalRecord::Histograms(h) => {
                        // Sent with `send_native_histograms` only, as in Prometheus (off by
                        // default). Each is encoded once, as the `Histogram` message sent.
                        if self.cfg.send_native_histograms
                            && !self.queue_samples(pos, h, true, |fh, t| {
                                let msg = crate::proto::Histogram::from_float(&fh, t);
                                let bytes = prost::Message::encode_to_vec(&msg);
                                (0.0, Some(Box::new(Extra::Histogram(bytes))))
                            })
                        {
                            return self.finish();
                        }
                    }
                    JournalRecord::Exemplars(e) => {
                        if !self.cfg.send_exemplars {
                            continue;
                        }
                        let sent_before = self.resume.is_some_and(|r| pos <= r);
                        self.seq += 1;
                        let seq = self.seq;
                        let mut chunks: Vec<Vec<Entry>> =
                            (0..self.shards.len()).map(|_| Vec::new()).collect();
                        for (r, ex) in e {
                            if sent_before || (self.resume.is_none() && !self.reached_start) {
                                continue;
                            }
                            self.stats.exemplars_in.fetch_add(1, Ordering::Relaxed);
                            let Some((Some(labels), _)) = self.series.get(&r) else {
                                self.stats.exemplars_dropped.fetch_add(1, Ordering::Relaxed);
                                continue;
                            };
                            let i = (labels.cached_hash() % chunks.len() as u64) as usize;
                            chunks[i].push(Entry {
                                labels: labels.clone(),
                                t: ex.t,
                                v: ex.value,
                                seq,
                                extra: Some(Box::new(Extra::Exemplar(encode_labels(&ex.labels)))),
                            });
                        }
                        for (i, c) in chunks.into_iter().enumerate() {
                            if !c.is_empty() && !self.enqueue(i, c) {
                                return self.finish();
                            }
                        }
                        self.positions.push_back((seq, pos));
                    }
                    JournalRecord::Metadata(m) => {
                        let Some(map) = &self.series_meta else {
                            continue;
                        };
                        let mut map = map.write();
                        for (r, meta) in m {
                            if let Some((Some(labels), _)) = self.series.get(&r) {
                                // Keyed by the newest series of these labels (see
                                // `forget_metadata`).
                                map.remove(labels);
                                map.insert(labels.clone(), meta);
                            }
                        }
                    }
                    JournalRecord::Samples(s) => {
                        if !self.queue_samples(pos, s, false, |v, _| (v, None)) {
                            return self.finish();
                        }
                    }
                }
            }
            self.advance();
            self.maybe_reshard();
            if idle {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        self.finish();
    }

    /// Drop the metadata of label sets no series sends any more. A key is the very label set
    /// of the series whose metadata it holds, so one of a forgotten series goes even when a
    /// newer series of the same labels is kept (its own record replaced the key).
    fn forget_metadata(&self) {
        let Some(map) = &self.series_meta else {
            return;
        };
        let mut map = map.write();
        if map.is_empty() {
            return;
        }
        let sent: std::collections::HashSet<usize> = self
            .series
            .values()
            .filter_map(|(l, _)| Some(l.as_ref()?.addr()))
            .collect();
        map.retain(|l, _| sent.contains(&l.addr()));
    }

    /// The labels a series is sent with: external labels it lacks added, then relabelled.
    /// Unchanged, they stay the label set given (shared with the head, not copied).
    fn prepare(&self, ls: &Labels) -> Option<WireSeries> {
        let ls = if self.external.iter().all(|l| ls.has(l.name)) {
            ls.clone()
        } else {
            let mut b = ls.builder();
            for l in self.external.iter() {
                if !ls.has(l.name) {
                    b.set(l.name, l.value);
                }
            }
            b.build()
        };
        let ls = if self.cfg.write_relabel_configs.is_empty() {
            ls
        } else {
            vigil_model::relabel::process(&ls, &self.cfg.write_relabel_configs)?
        };
        if ls.is_empty() {
            return None;
        }
        Some(ls)
    }

    /// Queue one record's float samples (`histograms` false) or native histograms on their
    /// series' shards, `entry` giving each one's value and extra from what the record holds
    /// and its time; batches go out as they fill. False when the queue is stopping.
    fn queue_samples<T>(
        &mut self,
        pos: JournalPos,
        items: Vec<(u64, i64, T)>,
        histograms: bool,
        entry: impl Fn(T, i64) -> (f64, Option<Box<Extra>>),
    ) -> bool {
        if !self.reached_start {
            self.reached_start = items.iter().any(|x| x.1 >= self.start_ms);
        }
        let stats = self.stats.clone();
        let (read, dropped) = if histograms {
            (&stats.histograms_in, &stats.histograms_dropped)
        } else {
            (&stats.samples_in, &stats.samples_dropped)
        };
        let sent_before = self.resume.is_some_and(|r| pos <= r);
        self.seq += 1;
        let seq = self.seq;
        let max = self.cfg.queue_config.max_samples_per_send.max(1) as usize;
        let mut chunks: Vec<Vec<Entry>> = (0..self.shards.len()).map(|_| Vec::new()).collect();
        for (r, t, x) in items {
            if sent_before || (self.resume.is_none() && t < self.start_ms) {
                continue;
            }
            read.fetch_add(1, Ordering::Relaxed);
            stats
                .highest_in_ms
                .fetch_max(t.max(0) as u64, Ordering::Relaxed);
            let Some((Some(labels), _)) = self.series.get(&r) else {
                // Dropped by write_relabel_configs (or a series the log never named).
                dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let i = (labels.cached_hash() % chunks.len() as u64) as usize;
            let (v, extra) = entry(x, t);
            chunks[i].push(Entry {
                labels: labels.clone(),
                t,
                v,
                seq,
                extra,
            });
            if chunks[i].len() >= max {
                let full = std::mem::take(&mut chunks[i]);
                if !self.enqueue(i, full) {
                    return false;
                }
            }
        }
        for (i, c) in chunks.into_iter().enumerate() {
            if !c.is_empty() && !self.enqueue(i, c) {
                return false;
            }
        }
        self.positions.push_back((seq, pos));
        true
    }

    /// Queue a chunk on shard `i`, waiting while it is full. False when the queue is stopping.
    fn enqueue(&mut self, i: usize, mut c: Vec<Entry>) -> bool {
        let n = c.len() as u64;
        let (ns, nh, ne) = kinds(&c);
        loop {
            let sh = &self.shards[i];
            sh.pending.fetch_add(n, Ordering::SeqCst);
            self.stats.samples_pending.fetch_add(ns, Ordering::Relaxed);
            self.stats
                .histograms_pending
                .fetch_add(nh, Ordering::Relaxed);
            self.stats
                .exemplars_pending
                .fetch_add(ne, Ordering::Relaxed);
            match sh.tx.try_send(c) {
                Ok(()) => return true,
                Err(err) => {
                    sh.pending.fetch_sub(n, Ordering::SeqCst);
                    self.stats.samples_pending.fetch_sub(ns, Ordering::Relaxed);
                    self.stats
                        .histograms_pending
                        .fetch_sub(nh, Ordering::Relaxed);
                    self.stats
                        .exemplars_pending
                        .fetch_sub(ne, Ordering::Relaxed);
                    c = match err {
                        tokio::sync::mpsc::error::TrySendError::Full(c) => c,
                        tokio::sync::mpsc::error::TrySendError::Closed(c) => c,
                    };
                }
            }
            // Full: the receiver is slow or down. Stop reading until there is room; the WAL
            // holds everything meanwhile.
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            self.advance();
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Move the saved position over every record all shards have finished with.
    fn advance(&mut self) {
        let mut done = self.seq.min(self.ceiling.unwrap_or(u64::MAX));
        for sh in &self.shards {
            if sh.pending.load(Ordering::SeqCst) > 0 {
                // The last record it sent may have more samples still queued: only the
                // records before it are surely complete.
                done = done.min(sh.done_seq.load(Ordering::SeqCst).saturating_sub(1));
            }
        }
        let mut newest = None;
        while let Some(&(s, p)) = self.positions.front() {
            if s > done {
                break;
            }
            newest = Some(p);
            self.positions.pop_front();
        }
        if let Some(p) = newest {
            self.saved = Some(p);
            self.stats
                .delivered_segment
                .store(p.segment, Ordering::SeqCst);
        }
        // Often: after a crash, what was sent since the last save is sent again.
        if self.last_save.elapsed() >= Duration::from_secs(1) {
            self.save();
        }
    }

    fn save(&mut self) {
        // Only when it moved: each write is synced, and an idle queue has nothing to record.
        if let Some(p) = self.saved
            && self.written != Some(p)
        {
            write_position(&self.position_file, p);
            self.written = Some(p);
        }
        self.last_save = Instant::now();
    }

    fn start_shards(&mut self, n: usize) {
        // `capacity` counts samples; the channel holds chunks of up to a batch each.
        let q = &self.cfg.queue_config;
        let cap = (q.capacity / q.max_samples_per_send.max(1)).max(1) as usize;
        for _ in 0..n {
            let (tx, rx) = tokio::sync::mpsc::channel(cap);
            let pending = Arc::new(AtomicU64::new(0));
            let done_seq = Arc::new(AtomicU64::new(0));
            let shard = Shard {
                cfg: self.cfg.clone(),
                families: self.families.clone(),
                series_meta: self.series_meta.clone(),
                client: self.client.clone(),
                stats: self.stats.clone(),
                pending: pending.clone(),
                done_seq: done_seq.clone(),
                abandon: self.abandon.clone(),
            };
            let task = self.rt.spawn(shard.run(rx));
            self.shards.push(ShardHandle {
                tx,
                pending,
                done_seq,
                task,
            });
        }
        self.stats.shards.store(n as u64, Ordering::Relaxed);
    }

    /// Close the shards (each sends what it holds first) and wait for them.
    fn stop_shards(&mut self) {
        for sh in self.shards.drain(..) {
            drop(sh.tx);
            let _ = self.rt.block_on(sh.task);
            // A shard that ended with samples still pending (abandoned at the flush deadline,
            // or failed) did not deliver them: the saved position must stay before them.
            if sh.pending.load(Ordering::SeqCst) > 0 {
                let below = sh.done_seq.load(Ordering::SeqCst).saturating_sub(1);
                self.ceiling = Some(self.ceiling.map_or(below, |c| c.min(below)));
            }
        }
    }

    /// Prometheus's rule: as many shards as it takes to send what comes in plus a twentieth of
    /// the backlog per second, at the measured time per sample; changed only when off by 30%.
    fn maybe_reshard(&mut self) {
        const EVERY: Duration = Duration::from_secs(10);
        if self.last_reshard.elapsed() < EVERY {
            return;
        }
        let secs = self.last_reshard.elapsed().as_secs_f64();
        self.last_reshard = Instant::now();
        let samples_in = self.stats.samples_in.load(Ordering::Relaxed);
        let in_rate = (samples_in - self.in_at_reshard) as f64 / secs;
        self.in_at_reshard = samples_in;
        let sent = self.stats.samples_sent.load(Ordering::Relaxed).max(1) as f64;
        let per_sample = self.stats.send_micros.load(Ordering::Relaxed) as f64 / 1e6 / sent;
        let backlog = (self.stats.samples_pending.load(Ordering::Relaxed)
            + self.stats.exemplars_pending.load(Ordering::Relaxed)) as f64;
        let q = &self.cfg.queue_config;
        let desired = (per_sample * (in_rate + backlog * 0.05))
            .ceil()
            .clamp(q.min_shards.max(1) as f64, q.max_shards.max(1) as f64)
            as usize;
        self.stats
            .shards_desired
            .store(desired as u64, Ordering::Relaxed);
        let cur = self.shards.len();
        let off = (desired as f64 - cur as f64).abs() / cur as f64;
        if desired == cur || off < 0.3 {
            return;
        }
        // Drain the current shards first, so no series' samples are reordered.
        tracing::info!(from = cur, to = desired, queue = %self.cfg.name, "Remote write: resharding");
        self.stop_shards();
        self.start_shards(desired);
    }

    fn finish(&mut self) {
        self.stop_shards();
        self.advance();
        self.save();
    }
}

/// The length of a `Sample` message (value 1, timestamp 2), as 1.0 and 2.0 share it.
fn sample_len(t: i64) -> usize {
    1 + 8 + 1 + varint_len(t as u64)
}

/// The length of a 1.0 `Exemplar` message with `labels` (encoded) at `t`.
fn exemplar_len(labels: &[u8], t: i64) -> usize {
    labels.len() + 9 + 1 + varint_len(t as u64)
}

/// A `samples` field (2, in 1.0's and 2.0's `TimeSeries` alike) holding one sample.
fn put_sample(out: &mut Vec<u8>, t: i64, v: f64) {
    out.push(0x12);
    out.push(sample_len(t) as u8);
    out.push(0x09);
    out.extend_from_slice(&v.to_le_bytes());
    out.push(0x10);
    put_varint(out, t as u64);
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// A label set as `labels` fields (1) of a `prometheus.TimeSeries` (or `Exemplar`), each a
/// `Label` with `name` (1) and `value` (2).
pub(crate) fn encode_labels(ls: &Labels) -> Vec<u8> {
    let mut out = Vec::with_capacity(labels_len(ls));
    put_labels(&mut out, ls);
    out
}

/// One label's `Label` message length.
fn label_len(n: &[u8], v: &[u8]) -> usize {
    1 + varint_len(n.len() as u64) + n.len() + 1 + varint_len(v.len() as u64) + v.len()
}

/// The length of [`put_labels`]'s output.
fn labels_len(ls: &Labels) -> usize {
    ls.iter()
        .map(|l| {
            let n = label_len(l.name.as_bytes(), l.value.as_bytes());
            1 + varint_len(n as u64) + n
        })
        .sum()
}

/// Write `ls` as [`encode_labels`] does, onto `out`.
fn put_labels(out: &mut Vec<u8>, ls: &Labels) {
    for l in ls.iter() {
        let (n, v) = (l.name.as_bytes(), l.value.as_bytes());
        out.push(0x0a);
        put_varint(out, label_len(n, v) as u64);
        out.push(0x0a);
        put_varint(out, n.len() as u64);
        out.extend_from_slice(n);
        out.push(0x12);
        put_varint(out, v.len() as u64);
        out.extend_from_slice(v);
    }
}

/// One `prometheus.WriteRequest` for a batch (each series once, its samples in order),
/// snappy-encoded, and its newest timestamp. Written directly: building the prost structs
/// cloned every label string of every series of every batch.
fn encode_batch(batch: &[Entry]) -> (Vec<u8>, i64) {
    // Group by series (the labels' allocation names it), keeping each series' order.
    let mut idx: Vec<usize> = (0..batch.len()).collect();
    idx.sort_by_key(|&i| batch[i].labels.addr());
    let mut raw = Vec::with_capacity(batch.len() * 64);
    let mut highest = 0i64;
    let mut i = 0;
    while i < idx.len() {
        let labels = &batch[idx[i]].labels;
        let mut j = i;
        let mut len = labels_len(labels);
        let mut kind = None;
        while j < idx.len() && batch[idx[j]].labels.same(labels) {
            let e = &batch[idx[j]];
            // A series switching between floats and histograms is sent as one TimeSeries per
            // run of one kind, in order: a receiver appends a TimeSeries' floats before its
            // histograms, and must see them in time order.
            if !run_continues(&mut kind, e) {
                break;
            }
            len += match e.extra.as_deref() {
                None => 2 + sample_len(e.t),
                Some(Extra::Exemplar(x)) => {
                    let n = exemplar_len(x, e.t);
                    1 + varint_len(n as u64) + n
                }
                Some(Extra::Histogram(h)) => 1 + varint_len(h.len() as u64) + h.len(),
            };
            j += 1;
        }
        raw.push(0x0a);
        put_varint(&mut raw, len as u64);
        put_labels(&mut raw, labels);
        // Samples (field 2), then exemplars (field 3), each in time order.
        for &k in &idx[i..j] {
            let e = &batch[k];
            if e.is_sample() {
                put_sample(&mut raw, e.t, e.v);
                highest = highest.max(e.t);
            }
        }
        for &k in &idx[i..j] {
            let e = &batch[k];
            if let Some(x) = e.exemplar() {
                raw.push(0x1a);
                put_varint(&mut raw, exemplar_len(x, e.t) as u64);
                raw.extend_from_slice(x);
                raw.push(0x11); // value (2)
                raw.extend_from_slice(&e.v.to_le_bytes());
                raw.push(0x18); // timestamp (3)
                put_varint(&mut raw, e.t as u64);
            }
        }
        // Native histograms (field 4), in time order.
        for &k in &idx[i..j] {
            let e = &batch[k];
            if let Some(h) = e.histogram() {
                raw.push(0x22);
                put_varint(&mut raw, h.len() as u64);
                raw.extend_from_slice(h);
                highest = highest.max(e.t);
            }
        }
        i = j;
    }
    (crate::codec::compress(&raw), highest)
}

/// The index of `s` in the symbols `table`, added if new.
fn intern<'a>(symbols: &mut HashMap<&'a [u8], u32>, table: &mut Vec<&'a [u8]>, s: &'a [u8]) -> u32 {
    let next = table.len() as u32;
    let r = *symbols.entry(s).or_insert(next);
    if r == next {
        table.push(s);
    }
    r
}

/// `protobuf_message` for remote write 2.0.
const V2_MESSAGE: &str = "io.prometheus.write.v2.Request";

/// How soon a batch is tried again after the receiver refused the connection (see `send`).
const REFUSED_RETRY: Duration = Duration::from_millis(250);

/// How many samples a remote write 2.0 receiver says it wrote.
const WRITTEN_HEADER: &str = "X-Prometheus-Remote-Write-Samples-Written";
const HISTOGRAMS_WRITTEN_HEADER: &str = "X-Prometheus-Remote-Write-Histograms-Written";

/// A `Retry-After` value: whole seconds above 0 (what receivers send; an HTTP date or 0 is
/// ignored and the backoff applies).
pub(crate) fn retry_after_header(v: &str) -> Option<Duration> {
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
}

/// The headers of a remote write request (1.0 or 2.0), the endpoint's own `headers` last.
pub(crate) fn write_headers(cfg: &RemoteWriteConfig, v2: bool) -> Vec<(&str, &str)> {
    let mut h: Vec<(&str, &str)> = vec![
        ("Content-Encoding", "snappy"),
        if v2 {
            (
                "Content-Type",
                "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            )
        } else {
            ("Content-Type", "application/x-protobuf")
        },
        (
            "X-Prometheus-Remote-Write-Version",
            if v2 { "2.0.0" } else { "0.1.0" },
        ),
        ("User-Agent", concat!("vigil/", env!("CARGO_PKG_VERSION"))),
    ];
    h.extend(cfg.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    h
}

/// The (name, value) pairs of labels encoded by [`encode_labels`].
fn decode_labels(mut b: &[u8]) -> Vec<(&[u8], &[u8])> {
    fn varint(b: &mut &[u8]) -> usize {
        let (mut v, mut shift) = (0usize, 0);
        while let Some((&x, rest)) = b.split_first() {
            *b = rest;
            v |= ((x & 0x7f) as usize) << shift;
            shift += 7;
            if x < 0x80 {
                break;
            }
        }
        v
    }
    fn field<'a>(b: &mut &'a [u8]) -> &'a [u8] {
        *b = &b[1..]; // the tag
        let n = varint(b).min(b.len());
        let (f, rest) = b.split_at(n);
        *b = rest;
        f
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let mut label = field(&mut b);
        let name = field(&mut label);
        let value = field(&mut label);
        out.push((name, value));
    }
    out
}

/// As [`encode_batch`], an `io.prometheus.write.v2.Request`: every label string once in the
/// symbols table (which starts with the empty string), series as pairs of indexes into it.
fn encode_batch_v2(
    batch: &[Entry],
    families: Option<&crate::metadata::FamilyTable>,
    series_meta: Option<&crate::metadata::SeriesTable>,
) -> (Vec<u8>, i64) {
    let mut idx: Vec<usize> = (0..batch.len()).collect();
    idx.sort_by_key(|&i| batch[i].labels.addr());
    let mut symbols: HashMap<&[u8], u32> = HashMap::new();
    let mut table: Vec<&[u8]> = vec![b""];
    symbols.insert(b"", 0);
    let mut series = Vec::with_capacity(batch.len() * 32);
    let mut highest = 0i64;
    let mut refs: Vec<u32> = Vec::new();
    let mut exemplars: Vec<(usize, Vec<u32>, usize, usize)> = Vec::new();
    let mut i = 0;
    while i < idx.len() {
        let labels = &batch[idx[i]].labels;
        refs.clear();
        let mut name: &[u8] = b"";
        for l in labels.iter() {
            let (n, v) = (l.name.as_bytes(), l.value.as_bytes());
            if n == b"__name__" {
                name = v;
            }
            refs.push(intern(&mut symbols, &mut table, n));
            refs.push(intern(&mut symbols, &mut table, v));
        }
        // The series' metadata, its own (from the WAL) else its family's: type, help and
        // unit (by reference).
        let own = series_meta
            .and_then(|m| m.get(labels))
            .map(|m| (m.kind.code() as i32, m.help.as_str(), m.unit.as_str()));
        let meta = own
            .or_else(|| {
                let (kind, help, unit) =
                    crate::metadata::family_of(families?, std::str::from_utf8(name).ok()?)?;
                Some((*kind, help.as_str(), unit.as_str()))
            })
            .map(|(kind, help, unit)| {
                (
                    kind,
                    intern(&mut symbols, &mut table, help.as_bytes()),
                    intern(&mut symbols, &mut table, unit.as_bytes()),
                )
            });
        let meta_len = meta.map_or(0, |(k, h, u)| {
            1 + varint_len(k as u64) + 1 + varint_len(h as u64) + 1 + varint_len(u as u64)
        });
        let refs_len: usize = refs.iter().map(|&r| varint_len(r as u64)).sum();
        let mut j = i;
        let mut len = 1 + varint_len(refs_len as u64) + refs_len;
        if meta.is_some() {
            len += 1 + varint_len(meta_len as u64) + meta_len;
        }
        // Each exemplar as an `ExemplarV2`: its label refs, then its length.
        exemplars.clear();
        let mut kind = None;
        while j < idx.len() && batch[idx[j]].labels.same(labels) {
            let e = &batch[idx[j]];
            // One TimeSeries per run of one kind, as in 1.0's encoder.
            if !run_continues(&mut kind, e) {
                break;
            }
            match e.extra.as_deref() {
                None => len += 2 + sample_len(e.t),
                Some(Extra::Histogram(h)) => len += 1 + varint_len(h.len() as u64) + h.len(),
                Some(Extra::Exemplar(x)) => {
                    let mut r = Vec::new();
                    for (n, v) in decode_labels(x) {
                        r.push(intern(&mut symbols, &mut table, n));
                        r.push(intern(&mut symbols, &mut table, v));
                    }
                    let rl: usize = r.iter().map(|&x| varint_len(x as u64)).sum();
                    let n = 1 + varint_len(rl as u64) + rl + 9 + 1 + varint_len(e.t as u64);
                    len += 1 + varint_len(n as u64) + n;
                    exemplars.push((idx[j], r, rl, n));
                }
            }
            j += 1;
        }
        series.push(0x2a); // timeseries (5)
        put_varint(&mut series, len as u64);
        series.push(0x0a); // labels_refs (1), packed
        put_varint(&mut series, refs_len as u64);
        for &r in &refs {
            put_varint(&mut series, r as u64);
        }
        for &k in &idx[i..j] {
            let e = &batch[k];
            if e.is_sample() {
                put_sample(&mut series, e.t, e.v);
                highest = highest.max(e.t);
            }
        }
        // Native histograms (field 3), in time order.
        for &k in &idx[i..j] {
            let e = &batch[k];
            if let Some(h) = e.histogram() {
                series.push(0x1a);
                put_varint(&mut series, h.len() as u64);
                series.extend_from_slice(h);
                highest = highest.max(e.t);
            }
        }
        for (k, r, rl, n) in &exemplars {
            let e = &batch[*k];
            series.push(0x22); // exemplars (4)
            put_varint(&mut series, *n as u64);
            series.push(0x0a); // labels_refs (1), packed
            put_varint(&mut series, *rl as u64);
            for &x in r {
                put_varint(&mut series, x as u64);
            }
            series.push(0x11); // value (2)
            series.extend_from_slice(&e.v.to_le_bytes());
            series.push(0x18); // timestamp (3)
            put_varint(&mut series, e.t as u64);
        }
        if let Some((kind, help, unit)) = meta {
            series.push(0x2a); // metadata (5)
            put_varint(&mut series, meta_len as u64);
            series.push(0x08); // type (1)
            put_varint(&mut series, kind as u64);
            series.push(0x18); // help_ref (3)
            put_varint(&mut series, help as u64);
            series.push(0x20); // unit_ref (4)
            put_varint(&mut series, unit as u64);
        }
        i = j;
    }
    let mut raw = Vec::with_capacity(series.len() + table.len() * 16);
    for s in &table {
        raw.push(0x22); // symbols (4)
        put_varint(&mut raw, s.len() as u64);
        raw.extend_from_slice(s);
    }
    raw.extend_from_slice(&series);
    (crate::codec::compress(&raw), highest)
}

/// `s` with the endpoint's password (from `user:password@` in its URL) masked: error texts
/// from the HTTP client repeat the URL.
pub(crate) fn redact(url: &str, s: String) -> String {
    let masked = vigil_config::mask_url(url);
    if masked == url {
        return s;
    }
    let s = s.replace(url, &masked);
    match url
        .split_once("://")
        .and_then(|(_, rest)| rest.split('@').next())
        .and_then(|userinfo| userinfo.split_once(':'))
    {
        Some((_, pw)) if !pw.is_empty() => s.replace(pw, "<secret>"),
        _ => s,
    }
}

struct Shard {
    cfg: RemoteWriteConfig,
    families: Option<crate::metadata::FamilyMap>,
    series_meta: Option<crate::metadata::SeriesMap>,
    client: Arc<vigil_scrape::client::Scraper>,
    stats: Arc<Stats>,
    pending: Arc<AtomicU64>,
    done_seq: Arc<AtomicU64>,
    abandon: Arc<AtomicBool>,
}

impl Shard {
    async fn run(self, mut rx: tokio::sync::mpsc::Receiver<Vec<Entry>>) {
        let max = self.cfg.queue_config.max_samples_per_send.max(1) as usize;
        let deadline = self.cfg.queue_config.batch_send_deadline;
        let mut batch: Vec<Entry> = Vec::with_capacity(max);
        loop {
            let first = match rx.recv().await {
                Some(c) => c,
                None => break,
            };
            batch.extend(first);
            let until = tokio::time::Instant::now() + deadline;
            while batch.len() < max {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(c)) => batch.extend(c),
                    Ok(None) | Err(_) => break,
                }
            }
            // A batch at most `max_samples_per_send`; what is over waits for the next.
            while !batch.is_empty() {
                let n = batch.len().min(max);
                if n < max && batch.len() < max && !rx.is_closed() && !rx.is_empty() {
                    break;
                }
                if !self.send(&batch[..n]).await {
                    // Abandoned at the flush deadline: neither sent nor marked done, so the
                    // saved position stays before these samples and the next start sends them.
                    return;
                }
                let last = batch[n - 1].seq;
                let (ns, nh, ne) = kinds(&batch[..n]);
                batch.drain(..n);
                self.done_seq.store(last, Ordering::SeqCst);
                self.pending.fetch_sub(n as u64, Ordering::SeqCst);
                self.stats.samples_pending.fetch_sub(ns, Ordering::Relaxed);
                self.stats
                    .histograms_pending
                    .fetch_sub(nh, Ordering::Relaxed);
                self.stats
                    .exemplars_pending
                    .fetch_sub(ne, Ordering::Relaxed);
            }
        }
    }

    /// The entries of `batch` within `sample_age_limit` of now, when any are older (those
    /// are counted as dropped); `None` when every entry is young enough, or there is no limit.
    fn drop_too_old(&self, batch: &[Entry]) -> Option<Vec<Entry>> {
        let limit = self.cfg.queue_config.sample_age_limit;
        if limit.is_zero() {
            return None;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let cutoff = now.saturating_sub(limit.as_millis().min(i64::MAX as u128) as i64);
        if batch.iter().all(|e| e.t >= cutoff) {
            return None;
        }
        let (keep, old): (Vec<&Entry>, Vec<&Entry>) = batch.iter().partition(|e| e.t >= cutoff);
        let (ns, nh, ne) = kinds(old);
        self.stats.samples_dropped.fetch_add(ns, Ordering::Relaxed);
        self.stats
            .histograms_dropped
            .fetch_add(nh, Ordering::Relaxed);
        self.stats
            .exemplars_dropped
            .fetch_add(ne, Ordering::Relaxed);
        tracing::debug!(url = %vigil_config::mask_url(&self.cfg.url), samples = ns, histograms = nh, exemplars = ne, "Remote write: dropped entries older than sample_age_limit");
        Some(keep.into_iter().cloned().collect())
    }

    /// Send one batch until it is accepted or refused for good (true), or abandoned at the
    /// flush deadline (false).
    async fn send(&self, batch: &[Entry]) -> bool {
        let v2 = self.cfg.protobuf_message == V2_MESSAGE;
        let encode = |batch: &[Entry]| {
            if v2 {
                encode_batch_v2(
                    batch,
                    self.families.as_ref().map(|f| f.read()).as_deref(),
                    self.series_meta.as_ref().map(|m| m.read()).as_deref(),
                )
            } else {
                encode_batch(batch)
            }
        };
        let q = &self.cfg.queue_config;
        // `sample_age_limit`: entries older than it are dropped rather than sent, before the
        // first try and again before each retry (as Prometheus filters them), so a receiver
        // back after an outage is not sent what it would refuse as too old.
        let mut kept: Option<Vec<Entry>> = None;
        if let Some(k) = self.drop_too_old(batch) {
            kept = Some(k);
        }
        let (mut body, mut highest) = encode(kept.as_deref().unwrap_or(batch));
        // `n` counts float samples, `nh` native histograms, `ne` exemplars: a 2.0 receiver
        // reports each kind written apart.
        let (mut n, mut nh, mut ne) = kinds(kept.as_deref().unwrap_or(batch));
        let mut backoff = q.min_backoff;
        let headers = write_headers(&self.cfg, v2);
        // When the last retry's warning was logged: refused connections are retried often
        // (below), and the log says so once per `max_backoff`.
        let mut logged: Option<Instant> = None;
        let mut first = true;
        loop {
            if !std::mem::take(&mut first)
                && let Some(k) = self.drop_too_old(kept.as_deref().unwrap_or(batch))
            {
                (body, highest) = encode(&k);
                (n, nh, ne) = kinds(&k);
                kept = Some(k);
            }
            if kept.as_ref().is_some_and(Vec::is_empty) {
                return true;
            }
            let t0 = Instant::now();
            let res = self
                .client
                .post_reply(
                    &self.cfg.url,
                    &headers,
                    body.clone(),
                    self.cfg.remote_timeout,
                    &[WRITTEN_HEADER, "Retry-After", HISTOGRAMS_WRITTEN_HEADER],
                )
                .await;
            let mut wait = backoff;
            let mut refused = false;
            let retry_after = match res {
                Ok(r) if (200..300).contains(&r.status) => {
                    // A 2.0 receiver says how many it wrote; fewer than sent is a partial
                    // write, whose missing samples count as failed (they are not resent). A
                    // 2xx without the count comes from a 1.0 receiver, which reads a 2.0 body
                    // as an empty request: nothing was written.
                    let written = if v2 {
                        Some(
                            r.headers[0]
                                .as_deref()
                                .and_then(|w| w.trim().parse::<u64>().ok()),
                        )
                    } else {
                        None
                    };
                    let ok = match written {
                        None => n,
                        Some(Some(w)) => w.min(n),
                        Some(None) => 0,
                    };
                    if ok < n {
                        let msg = match written {
                            Some(None) => format!(
                                "receiver answered {} without {WRITTEN_HEADER}: it does not take remote write 2.0 (a 1.0 receiver reads the body as empty), so {n} samples were lost; set protobuf_message: prometheus.WriteRequest",
                                r.status
                            ),
                            _ => format!("receiver wrote {ok} of {n} samples ({WRITTEN_HEADER})"),
                        };
                        tracing::error!(url = %vigil_config::mask_url(&self.cfg.url), err = %msg, "Remote write: partial write");
                        self.stats
                            .samples_failed
                            .fetch_add(n - ok, Ordering::Relaxed);
                        *self.stats.last_error.lock() = Some(msg);
                    }
                    self.stats.samples_sent.fetch_add(ok, Ordering::Relaxed);
                    // Histograms: the receipt's count (a 2.0 receiver sending the samples
                    // count without this one is taken as having written them all), none if
                    // a 1.0 receiver read the body as empty.
                    let h_ok = match written {
                        None => nh,
                        Some(None) => 0,
                        Some(Some(_)) => r.headers[2]
                            .as_deref()
                            .and_then(|w| w.trim().parse::<u64>().ok())
                            .map_or(nh, |w| w.min(nh)),
                    };
                    if h_ok < nh && matches!(written, Some(Some(_))) {
                        let msg = format!(
                            "receiver wrote {h_ok} of {nh} native histograms ({HISTOGRAMS_WRITTEN_HEADER})"
                        );
                        tracing::error!(url = %vigil_config::mask_url(&self.cfg.url), err = %msg, "Remote write: partial write");
                        *self.stats.last_error.lock() = Some(msg);
                    }
                    self.stats
                        .histograms_sent
                        .fetch_add(h_ok, Ordering::Relaxed);
                    self.stats
                        .histograms_failed
                        .fetch_add(nh - h_ok, Ordering::Relaxed);
                    // A 1.0 receiver read a 2.0 body as empty: its exemplars are lost too.
                    let ex_ok = if matches!(written, Some(None)) { 0 } else { ne };
                    self.stats
                        .exemplars_sent
                        .fetch_add(ex_ok, Ordering::Relaxed);
                    self.stats
                        .exemplars_failed
                        .fetch_add(ne - ex_ok, Ordering::Relaxed);
                    self.stats
                        .bytes_sent
                        .fetch_add(body.len() as u64, Ordering::Relaxed);
                    self.stats.batches.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .send_micros
                        .fetch_add(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
                    self.stats
                        .highest_sent_ms
                        .fetch_max(highest.max(0) as u64, Ordering::Relaxed);
                    return true;
                }
                Ok(r) if r.status >= 500 || (r.status == 429 && q.retry_on_http_429) => {
                    // The receiver's Retry-After (whole seconds, above 0) replaces the backoff
                    // for this wait, within max_backoff (Prometheus honours it too).
                    if let Some(d) = r.headers[1].as_deref().and_then(retry_after_header) {
                        wait = d.min(q.max_backoff);
                    }
                    format!("server returned HTTP status {}: {}", r.status, r.text)
                }
                Ok(r) if v2 && r.status == 415 => {
                    let msg = format!(
                        "server returned HTTP status 415: {}; the receiver does not take remote write 2.0: set protobuf_message: prometheus.WriteRequest",
                        r.text
                    );
                    tracing::error!(url = %vigil_config::mask_url(&self.cfg.url), err = %msg, samples = n, "Remote write: non-recoverable error; batch dropped");
                    self.stats.samples_failed.fetch_add(n, Ordering::Relaxed);
                    self.stats
                        .histograms_failed
                        .fetch_add(nh, Ordering::Relaxed);
                    self.stats.exemplars_failed.fetch_add(ne, Ordering::Relaxed);
                    *self.stats.last_error.lock() = Some(msg);
                    return true;
                }
                Ok(vigil_scrape::client::Reply {
                    status: s, text, ..
                }) => {
                    // Refused for good (400s): retrying cannot help; Prometheus drops it too.
                    let msg = format!("server returned HTTP status {s}: {text}");
                    tracing::error!(url = %vigil_config::mask_url(&self.cfg.url), err = %msg, samples = n, "Remote write: non-recoverable error; batch dropped");
                    self.stats.samples_failed.fetch_add(n, Ordering::Relaxed);
                    self.stats
                        .histograms_failed
                        .fetch_add(nh, Ordering::Relaxed);
                    self.stats.exemplars_failed.fetch_add(ne, Ordering::Relaxed);
                    *self.stats.last_error.lock() = Some(msg);
                    return true;
                }
                Err(e) => {
                    refused = matches!(e, PostError::Refused(_));
                    redact(&self.cfg.url, e.to_string())
                }
            };
            if refused {
                // Nothing listens on the receiver's port (it is restarting, or down): a try
                // costs it one refused connection, no more than a probe would, so tries come
                // every REFUSED_RETRY instead of waiting out the backoff, and the first one
                // after it is back sends the batch. The backoff still grows, for when the
                // failure turns into one the receiver has to answer.
                wait = wait.min(REFUSED_RETRY);
            }
            if !refused || logged.is_none_or(|t| t.elapsed() >= q.max_backoff) {
                tracing::warn!(url = %vigil_config::mask_url(&self.cfg.url), err = %retry_after, backoff = ?wait, "Remote write: send failed; retrying");
                logged = Some(Instant::now());
            }
            *self.stats.last_error.lock() = Some(retry_after);
            self.stats.samples_retried.fetch_add(n, Ordering::Relaxed);
            self.stats
                .histograms_retried
                .fetch_add(nh, Ordering::Relaxed);
            self.stats
                .exemplars_retried
                .fetch_add(ne, Ordering::Relaxed);
            if self.abandon.load(Ordering::SeqCst) {
                return false;
            }
            tokio::time::sleep(wait).await;
            if self.abandon.load(Ordering::SeqCst) {
                return false;
            }
            backoff = (backoff * 2).min(q.max_backoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Label, Sample, TimeSeries, WriteRequest};

    /// A series that switches between floats and histograms goes out as one TimeSeries per
    /// run of one kind, in time order, in 1.0 and 2.0 alike; the histograms decode as sent.
    #[test]
    fn a_series_switching_kinds_is_sent_in_time_order() {
        use crate::proto::{Histogram, RequestV2};
        let a = Labels::from_pairs([("__name__", "h"), ("job", "a")]);
        let fh = vigil_model::FloatHistogram {
            count: 3.0,
            sum: 1.5,
            positive_spans: vec![vigil_model::histogram::Span {
                offset: 0,
                length: 2,
            }],
            positive_buckets: vec![1.0, 2.0],
            ..Default::default()
        };
        let e = |t: i64, h: bool| Entry {
            labels: a.clone(),
            t,
            v: t as f64,
            seq: 1,
            extra: h.then(|| {
                Box::new(Extra::Histogram(prost::Message::encode_to_vec(
                    &Histogram::from_float(&fh, t),
                )))
            }),
        };
        let batch = vec![
            e(1000, false),
            e(2000, true),
            e(3000, false),
            e(4000, false),
        ];
        let got: WriteRequest = crate::codec::decode(&encode_batch(&batch).0).unwrap();
        let runs: Vec<(Vec<i64>, Vec<i64>)> = got
            .timeseries
            .iter()
            .map(|ts| {
                let hs = ts
                    .histograms
                    .iter()
                    .map(|b| {
                        let h: Histogram = prost::Message::decode(b.as_slice()).unwrap();
                        assert!(h.to_float().unwrap().same_as(&fh));
                        assert_eq!(h.count_int, Some(3), "whole counts go as integers");
                        h.timestamp
                    })
                    .collect();
                (ts.samples.iter().map(|s| s.timestamp).collect(), hs)
            })
            .collect();
        let want = vec![
            (vec![1000], vec![]),
            (vec![], vec![2000]),
            (vec![3000, 4000], vec![]),
        ];
        assert_eq!(runs, want);
        let got: RequestV2 = crate::codec::decode(&encode_batch_v2(&batch, None, None).0).unwrap();
        let runs: Vec<(Vec<i64>, usize)> = got
            .timeseries
            .iter()
            .map(|ts| {
                (
                    ts.samples.iter().map(|s| s.timestamp).collect(),
                    ts.histograms.len(),
                )
            })
            .collect();
        assert_eq!(
            runs,
            vec![(vec![1000], 0), (vec![], 1), (vec![3000, 4000], 0)]
        );
    }

    /// The hand-written encoding decodes as the `prometheus.WriteRequest` it stands for: each
    /// series once, with its samples in order, whatever the batch's interleaving.
    #[test]
    fn batches_encode_as_write_requests() {
        let a = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let b = Labels::from_pairs([("__name__", "long_name_".repeat(20)), ("x", "é".into())]);
        let (la, lb) = (a.clone(), b.clone());
        let e = |l: &Labels, t: i64, v: f64| Entry {
            labels: l.clone(),
            t,
            v,
            seq: 1,
            extra: None,
        };
        let batch = vec![
            e(&la, 1000, 1.0),
            e(&lb, -5, f64::NAN),
            e(&la, 2000, 0.0),
            e(&lb, 1_800_000_000_000, -2.5),
        ];
        let (body, highest) = encode_batch(&batch);
        assert_eq!(highest, 1_800_000_000_000);
        let got: WriteRequest = crate::codec::decode(&body).unwrap();
        let wire = |ls: &Labels| -> Vec<Label> {
            ls.iter()
                .map(|l| Label {
                    name: l.name.into(),
                    value: l.value.into(),
                })
                .collect()
        };
        let mut series = got.timeseries.clone();
        series.sort_by(|x, y| x.labels[0].value.cmp(&y.labels[0].value));
        assert_eq!(series.len(), 2);
        let ts_b = &series[0];
        let ts_a = &series[1];
        assert_eq!(
            ts_a,
            &TimeSeries {
                labels: wire(&a),
                samples: vec![
                    Sample {
                        value: 1.0,
                        timestamp: 1000
                    },
                    Sample {
                        value: 0.0,
                        timestamp: 2000
                    }
                ],
                ..Default::default()
            }
        );
        assert_eq!(ts_b.labels, wire(&b));
        assert_eq!(ts_b.samples[0].timestamp, -5);
        assert!(ts_b.samples[0].value.is_nan());
        assert_eq!(ts_b.samples[1].value, -2.5);
    }

    /// Exemplars ride in their series' `TimeSeries`, after its samples, in 1.0 and in 2.0
    /// (as the receiver resolves 2.0's symbol references), and count as no sample.
    #[test]
    fn exemplars_encode_in_both_versions() {
        let a = Labels::from_pairs([("__name__", "req_total"), ("job", "a")]);
        let la = a.clone();
        let ex = Labels::from_pairs([("trace_id", "abc"), ("span_id", "d")]);
        let batch = vec![
            Entry {
                labels: la.clone(),
                t: 1000,
                v: 3.0,
                seq: 1,
                extra: None,
            },
            Entry {
                labels: la.clone(),
                t: 999,
                v: 0.25,
                seq: 1,
                extra: Some(Box::new(Extra::Exemplar(encode_labels(&ex)))),
            },
        ];
        assert_eq!(kinds(&batch), (1, 0, 1));
        let want = TimeSeries {
            labels: a
                .iter()
                .map(|l| Label {
                    name: l.name.into(),
                    value: l.value.into(),
                })
                .collect(),
            samples: vec![Sample {
                value: 3.0,
                timestamp: 1000,
            }],
            exemplars: vec![crate::proto::Exemplar {
                labels: ex
                    .iter()
                    .map(|l| Label {
                        name: l.name.into(),
                        value: l.value.into(),
                    })
                    .collect(),
                value: 0.25,
                timestamp: 999,
            }],
            ..Default::default()
        };
        let (body, highest) = encode_batch(&batch);
        assert_eq!(highest, 1000, "an exemplar's time is not a sample's");
        let got: WriteRequest = crate::codec::decode(&body).unwrap();
        assert_eq!(got.timeseries, vec![want.clone()]);
        let (body, _) = encode_batch_v2(&batch, None, None);
        let got = crate::receive::decode(crate::receive::Message::V2, &body).unwrap();
        assert_eq!(got.timeseries, vec![want]);
    }

    /// The 2.0 encoding decodes, with the published message definition, to the same series
    /// and samples: the symbols table starts empty and holds each string once.
    #[test]
    fn batches_encode_as_v2_requests() {
        let a = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let b = Labels::from_pairs([("__name__", "up"), ("job", "b"), ("x", "é")]);
        let (la, lb) = (a.clone(), b.clone());
        let e = |l: &Labels, t: i64, v: f64| Entry {
            labels: l.clone(),
            t,
            v,
            seq: 1,
            extra: None,
        };
        let batch = vec![e(&la, 1000, 1.0), e(&lb, -5, 2.0), e(&la, 2000, 0.0)];
        let (body, highest) = encode_batch_v2(&batch, None, None);
        assert_eq!(highest, 2000);
        let got: crate::proto::RequestV2 = crate::codec::decode(&body).unwrap();
        assert_eq!(got.symbols[0], "");
        let mut seen = std::collections::HashSet::new();
        assert!(
            got.symbols.iter().all(|s| seen.insert(s.clone())),
            "{:?}",
            got.symbols
        );
        type Resolved = (Vec<(String, String)>, Vec<(i64, f64)>);
        let resolved: Vec<Resolved> = got
            .timeseries
            .iter()
            .map(|ts| {
                let labels = ts
                    .labels_refs
                    .chunks(2)
                    .map(|p| {
                        (
                            got.symbols[p[0] as usize].clone(),
                            got.symbols[p[1] as usize].clone(),
                        )
                    })
                    .collect();
                let samples = ts.samples.iter().map(|s| (s.timestamp, s.value)).collect();
                (labels, samples)
            })
            .collect();
        let pairs = |l: &Labels| -> Vec<(String, String)> {
            l.iter()
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect()
        };
        assert_eq!(resolved.len(), 2);
        assert!(resolved.contains(&(pairs(&a), vec![(1000, 1.0), (2000, 0.0)])));
        assert!(resolved.contains(&(pairs(&b), vec![(-5, 2.0)])));
        // Read as 1.0, a 2.0 body is empty (fields 1 to 3 are reserved in 2.0).
        let as_v1: WriteRequest = crate::codec::decode(&body).unwrap();
        assert!(as_v1.timeseries.is_empty());
    }

    /// With family metadata, each 2.0 series carries its family's type, help and unit.
    #[test]
    fn v2_series_carry_their_family_metadata() {
        let a = Labels::from_pairs([("__name__", "req_total"), ("job", "a")]);
        let b = Labels::from_pairs([("__name__", "other"), ("job", "a")]);
        let (la, lb) = (a.clone(), b.clone());
        let e = |l: &Labels| Entry {
            labels: l.clone(),
            t: 1000,
            v: 1.0,
            seq: 1,
            extra: None,
        };
        let families: crate::metadata::FamilyTable = [(
            "req".to_string(),
            (1, "Requests served.".to_string(), "".to_string()),
        )]
        .into_iter()
        .collect();
        let (body, _) = encode_batch_v2(&[e(&la), e(&lb)], Some(&families), None);
        let got: crate::proto::RequestV2 = crate::codec::decode(&body).unwrap();
        let name =
            |ts: &crate::proto::TimeSeriesV2| got.symbols[ts.labels_refs[1] as usize].clone();
        let req = got
            .timeseries
            .iter()
            .find(|t| name(t) == "req_total")
            .unwrap();
        let m = req.metadata.as_ref().expect("metadata");
        assert_eq!(m.r#type, 1);
        assert_eq!(got.symbols[m.help_ref as usize], "Requests served.");
        assert_eq!(got.symbols[m.unit_ref as usize], "");
        let other = got.timeseries.iter().find(|t| name(t) == "other").unwrap();
        assert!(other.metadata.is_none());
        assert_eq!(other.samples.len(), 1);
    }
}
