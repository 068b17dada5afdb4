"""The log of AWS calls the emulator answered, so tests can count attempts on the wire (e.g. retries) and see
which credentials and region signed each one."""

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestRecord:
    operation: str  # "Converse", "GetRecommendations", "PutObject", ... or "Unknown" for a path none serves
    model_id: str  # the knob target: Bedrock model id as sent, Personalize recommender ARN, or the operation
    status: int
    access_key: str = ""  # the access key id that signed the request ("" when unsigned)
    region: str = ""  # the region it was signed for


class RequestLog:
    """Thread-safe and append-only; reading gives a snapshot."""

    def __init__(self):
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def filter(self, **fields) -> list[RequestRecord]:
        """The records whose fields equal the given values, e.g. filter(operation="Converse", status=429)."""
        return [r for r in self.snapshot() if all(getattr(r, k) == v for k, v in fields.items())]

    def __iter__(self):
        return iter(self.snapshot())

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)
