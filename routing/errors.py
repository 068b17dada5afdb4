"""The one error vocabulary of the providers we call: every failure of a model call, or of another AWS call
(Personalize, S3, STS; classified in tenants/aws_errors), becomes a ProviderError."""


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
