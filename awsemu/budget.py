"""A tokens-per-minute quota per model, metered like Bedrock's: a call reserves its input tokens plus its
max_tokens when it starts, is refused with a 429 if that would pass the quota for the last 60 seconds, and
keeps only what it really used once it answers."""

import threading
import time
from collections import defaultdict, deque

from awsemu.wire import AwsError

WINDOW_S = 60.0
MESSAGE = "Too many tokens, please wait before trying again."


class TokenBudget:
    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._charges: dict[str, deque[list]] = defaultdict(deque)  # model -> [time, tokens], oldest first

    def clear(self) -> None:
        with self._lock:
            self._charges.clear()

    def reserve(self, model_id: str, tokens: int, limit: float) -> list | None:
        """Charge `tokens` now, or raise ThrottlingException; returns the charge to settle later."""
        if not limit:
            return None
        with self._lock:
            now = self.clock()
            charges = self._charges[model_id]
            while charges and charges[0][0] <= now - WINDOW_S:
                charges.popleft()
            if sum(tokens for _, tokens in charges) + tokens > limit:
                raise AwsError("ThrottlingException", 429, MESSAGE)
            charge = [now, tokens]
            charges.append(charge)
            return charge

    def settle(self, charge: list | None, tokens: int) -> None:
        if charge is not None:
            with self._lock:
                charge[1] = tokens

    def used(self, model_id: str) -> int:
        with self._lock:
            now = self.clock()
            return sum(tokens for at, tokens in self._charges.get(model_id, ()) if at > now - WINDOW_S)
