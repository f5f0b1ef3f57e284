import llmfiles.transfer


def test_public_names_are_pinned() -> None:
    assert llmfiles.transfer.__all__ == [
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
    assert all(hasattr(llmfiles.transfer, name) for name in llmfiles.transfer.__all__)
