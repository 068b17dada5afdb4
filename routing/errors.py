"""The LLM gateway's one error vocabulary: every provider failure becomes a ProviderError."""


class ProviderError(Exception):
    """A model call failed. `permanent` says whether retrying the same request can help."""

    def __init__(self, message: str, *, permanent: bool, code: str = ""):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.code = code


class ThrottledError(ProviderError):
    def __init__(self, message: str, code: str = "ThrottlingException"):
        super().__init__(message, permanent=False, code=code)
