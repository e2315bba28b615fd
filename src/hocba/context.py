"""Build the pipeline's context from the trust and reference directories, and hot-reload it.

`refresh()` is cheap when nothing changed (it compares fingerprints of the files), so the
worker calls it every couple of seconds; a change takes effect without a restart. A broken
trust store or reference file keeps the last good context and says so loudly.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from hocba.fingerprint import dir_fingerprint
from hocba.pipeline.codec import load_registry
from hocba.pipeline.process import PipelineContext
from hocba.pipeline.verify import Verifier
from hocba.reference.loader import load_reference_dir
from hocba.settings import Settings
from hocba.trust.store import load_trust_store

log = logging.getLogger("hocba.context")


class ContextLoader:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = load_registry()
        self._lock = threading.Lock()
        self._context: PipelineContext | None = None
        self._fingerprint = ""
        self.loaded_at = 0.0  # time.time() of the context in force
        # The files changed but did not load: the previous context stays in force (so a
        # suspension saved beside a broken file does not apply) until the files are fixed.
        self.build_failed = False
        self.unlisted = False  # the files could not be listed at the last look

    @property
    def reload_failed(self) -> bool:
        """What `hocba_reload_failing` reports: the context in force may not be the files'."""
        return self.build_failed or self.unlisted

    def _fingerprint_now(self) -> str:
        return dir_fingerprint(self.settings.trust_dir) + dir_fingerprint(
            self.settings.reference_dir
        )

    def _build(self) -> PipelineContext:
        settings = self.settings
        if settings.trust_dir is None:
            raise ValueError("HOCBA_TRUST_DIR is not set: no trust anchors, nothing can verify")
        if settings.reference_dir is None:
            raise ValueError(
                "HOCBA_REFERENCE_DIR is not set: with no Departments, every message would be "
                "dead-lettered as verify.signer_not_authorized"
            )
        trust = load_trust_store(settings.trust_dir)
        reference = load_reference_dir(settings.reference_dir)
        if not reference.departments:
            raise ValueError(
                f"{settings.reference_dir} holds no Departments (departments.csv or .json): "
                "every message would be dead-lettered as verify.signer_not_authorized"
            )
        return PipelineContext(
            registry=self.registry,
            verifier=Verifier(trust, clock_skew=timedelta(seconds=settings.clock_skew_s)),
            reference=reference,
            max_message_bytes=settings.max_message_bytes,
            max_records=settings.max_records_per_message,
        )

    def current(self) -> PipelineContext:
        with self._lock:
            if self._context is None:
                self._fingerprint = self._fingerprint_now()
                self._context = self._build()
                self.loaded_at = time.time()
            return self._context

    def refresh(self) -> bool:
        """Reload when the files changed; True when a new context took effect."""
        try:
            fingerprint = self._fingerprint_now()
        except OSError as exc:  # e.g. a file replaced while it was listed: look next time
            if not self.unlisted:  # said once while it lasts: refreshes come every 2 s
                log.error(
                    "could not list the trust/reference files, keeping what is loaded: %s", exc
                )
            self.unlisted = True
            return False
        if self.unlisted:
            log.info("the trust/reference files can be listed again")
            self.unlisted = False
        if fingerprint == self._fingerprint:
            return False
        try:
            context = self._build()
        except Exception as exc:  # keep serving with the last good trust and reference data
            log.error("reload failed, keeping the previous trust/reference data: %s", exc)
            self._fingerprint, self.build_failed = fingerprint, True
            return False
        with self._lock:
            self._context, self._fingerprint = context, fingerprint
            self.loaded_at, self.build_failed = time.time(), False
        log.info("trust store / reference data reloaded")
        return True
