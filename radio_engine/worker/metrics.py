"""The worker's Prometheus metrics (prometheus-client): radio_ prefix, base units, no listener labels.

Hot paths observe once per micro-batch, not once per event (a labelled inc costs ~1 us).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()  # the *_created series only add noise to every scrape

REGISTRY = CollectorRegistry(auto_describe=True)

_FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

EVENTS = Counter(
    "radio_listen_events_total",
    "Listen events consumed, by event type and outcome (applied, duplicate, dead_letter).",
    ["event", "outcome"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "radio_dead_letters_total",
    "Input messages sent to the dead-letter topic, by source topic and reason.",
    ["topic", "reason"],
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "radio_listen_batch_size_events",
    "Listen events per micro-batch.",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500),
    registry=REGISTRY,
)
GRU_STEP_SECONDS = Histogram(
    "radio_gru_step_seconds",
    "Seconds spent in the ONNX GRU step for one micro-batch (all of its ordered steps).",
    buckets=_FAST,
    registry=REGISTRY,
)
SELECTOR_SECONDS = Histogram(
    "radio_selector_seconds",
    "Seconds spent building queues for one micro-batch (pool re-rank and catalog rescoring).",
    buckets=_FAST,
    registry=REGISTRY,
)
BATCH_SECONDS = Histogram(
    "radio_listen_batch_seconds",
    "Seconds to process one listen micro-batch end to end inside the worker.",
    buckets=_FAST,
    registry=REGISTRY,
)
EVENT_TO_QUEUE_SECONDS = Histogram(
    "radio_event_to_queue_seconds",
    "Per applied listen event: from its Kafka timestamp to its batch's queues being handed to "
    "the producer.",
    buckets=_LATENCY,
    registry=REGISTRY,
)
QUEUES_PUBLISHED = Counter(
    "radio_queues_published_total",
    "Queue snapshots published to the queues topic.",
    registry=REGISTRY,
)
CATALOG_RESCORES = Counter(
    "radio_catalog_rescores_total",
    "Listeners whose candidate pool was rebuilt by a full catalog rescore (on or off the "
    "event path).",
    registry=REGISTRY,
)
FIRST_POOLS = Counter(
    "radio_first_pools_total",
    "Listeners given the shared first pool on the event path (their rescore comes later).",
    registry=REGISTRY,
)
FIRST_POOL_LISTENERS = Gauge(
    "radio_first_pool_listeners",
    "Listeners on the shared first pool, waiting for their whole-catalog rescore.",
    registry=REGISTRY,
)
REFINE_SECONDS = Histogram(
    "radio_refine_seconds",
    "Seconds of one off-path tick that rescores listeners waiting on the first pool.",
    buckets=_FAST,
    registry=REGISTRY,
)
UNKNOWN_TRACKS = Counter(
    "radio_unknown_track_events_total",
    "Listen events whose track is not in the catalog (served with the learned unknown vector).",
    registry=REGISTRY,
)
CATALOG_TRACKS = Gauge(
    "radio_catalog_tracks",
    "Tracks in this worker's in-memory catalog.",
    registry=REGISTRY,
)
CATALOG_AUDIO_TRACKS = Gauge(
    "radio_catalog_audio_tracks",
    "Catalog tracks whose vectors include an audio embedding.",
    registry=REGISTRY,
)
LISTENERS_HELD = Gauge(
    "radio_listeners_held",
    "Listener states held in this worker's table partitions (standby copies included).",
    registry=REGISTRY,
)
CHANGELOG_RECORDS = Counter(
    "radio_changelog_records_applied_total",
    "Listener-table changelog records applied to this worker's table, by copy: active "
    "(recovery of its own partitions) or standby (copies of other workers' partitions).",
    ["copy"],
    registry=REGISTRY,
)
AUDIO_CHUNKS = Counter(
    "radio_audio_chunks_total",
    "Audio chunks consumed, by outcome (accepted, dead_letter).",
    ["outcome"],
    registry=REGISTRY,
)
AUDIO_SECONDS = Counter(
    "radio_audio_decoded_seconds_total",
    "Seconds of audio decoded and featurised.",
    registry=REGISTRY,
)
TRACKS_EMBEDDED = Counter(
    "radio_tracks_embedded_total",
    "Tracks whose audio was complete and turned into an embedding on the tracks topic.",
    registry=REGISTRY,
)
EMBED_SECONDS = Histogram(
    "radio_track_embed_seconds",
    "Seconds to finish features and run the audio encoder for one complete track.",
    buckets=_FAST,
    registry=REGISTRY,
)
MODEL_INFO = Gauge(
    "radio_model_info",
    "The served model (value 1), labelled with its version and whether it was trained.",
    ["version", "trained"],
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "radio_consumer_lag_records",
    "Records behind the broker's end offset, per partition this worker's group consumer holds "
    "(updated by the gauges timer; a revoked partition's series is removed).",
    ["topic", "partition"],
    registry=REGISTRY,
)
