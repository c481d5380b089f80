"""The worker's engine: the served model, the catalog, the selector and the two processors.

Built once per worker process from a model directory; the Faust app only calls into it.
"""

from __future__ import annotations

from dataclasses import dataclass

from radio_engine.audio.assembly import AudioAssembler
from radio_engine.catalog import Catalog
from radio_engine.listens.pipeline import ListenPipeline
from radio_engine.model.runtime import ServingModel
from radio_engine.selector.selector import Selector
from radio_engine.settings import Settings


@dataclass
class Engine:
    """Everything a worker needs to turn events into queues and audio into tracks."""

    model: ServingModel
    catalog: Catalog
    selector: Selector
    listens: ListenPipeline
    audio: AudioAssembler

    @classmethod
    def load(cls, settings: Settings) -> Engine:
        """Load the model directory named by the settings and build the engine around it."""
        model = ServingModel(settings.model_path, threads=settings.worker_threads)
        catalog = Catalog.from_model(model)
        selector = Selector(settings, catalog, model)
        listens = ListenPipeline(settings, model, catalog, selector)
        audio = AudioAssembler(
            model.embed_audio,
            model.version,
            max_chunk_bytes=settings.audio_max_chunk_bytes,
            max_track_seconds=settings.audio_max_track_seconds,
            max_in_progress=settings.audio_max_tracks_in_progress,
        )
        return cls(model=model, catalog=catalog, selector=selector, listens=listens, audio=audio)
