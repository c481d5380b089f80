"""The listen-path benchmark, in parts: `python benchmarks/listen_path.py` runs them all.

common      constants shared by the phases (partitions, probe ids, stall limit)
kafka_io    topics, sending backlogs and paced events, reading topics and queues
metrics     scraping a worker's /metrics and diffing counters between two scrapes
workers     worker processes: environment, start/stop, readiness probes, progress
backlog     phases 1 and 5: throughput of one or two workers over a backlog
latency     phase 2: per-event latency of fresh listeners at a paced rate
state       phase 6: changelog bytes per listener
baselines   phases 3 and 4: the bare Faust counter and the plain aiokafka loop
broker_run  the broker phases in one broker's lifetime
runner      runs phases one by one, recording failures so the others go on
processor   the listen processor alone, no Kafka (Engine.load + ListenPipeline.process)
rescore     full-catalog top-k beside its matrix-product floor (selector_cost.py's helpers)
offline     GRU step vs sgemm, audio real-time factor
context     model choice, machine, broker version and settings: the header
markdown    Markdown tables and number cells
report      the broker tables; report_offline: the offline ones; summary: the JSON object
cli         arguments, the phases in order, main
"""

import os

# BLAS and OpenMP to one thread before numpy loads, here and (through the env) in every child
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
