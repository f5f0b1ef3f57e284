"""Streaming transfers to and from the providers' Files APIs.

`AsyncFilesClient` is the production path; the filename helpers are public because every place that
turns an untrusted name into a path (the CLI, the reference service) must use the same rules.
"""

from llmfiles.transfer._client import AsyncFilesClient
from llmfiles.transfer._filenames import parse_content_disposition, safe_join, sanitize_filename
from llmfiles.transfer._local import file_sha256
from llmfiles.transfer._models import FileObject, FoundUpload, Obtained, Progress, UploadResult
from llmfiles.transfer._settings import TransferSettings

__all__ = [
    "AsyncFilesClient",
    "FileObject",
    "FoundUpload",
    "Obtained",
    "Progress",
    "TransferSettings",
    "UploadResult",
    "file_sha256",
    "parse_content_disposition",
    "safe_join",
    "sanitize_filename",
]
