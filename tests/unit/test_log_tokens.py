"""Log lines never carry a shared report's token."""

from __future__ import annotations

from mastery_events.log_output import hide_share_tokens


def test_a_shared_reports_token_is_hidden_in_every_field() -> None:
    """The token after ``/shared/<tenant>/`` is replaced wherever it is,
    the PDF suffix and query kept; other paths are left alone."""
    line = {
        "event": "Uncaught exception",
        "path": "/shared/lakeside/Zm9vYmFyYmF6cXV4/pdf?lang=es",
        "url": "http://reports/shared/lakeside/Zm9vYmFyYmF6cXV4",
        "other": "/students/ada/share-links",
    }

    hidden = hide_share_tokens(None, "error", dict(line))

    assert hidden["path"] == "/shared/lakeside/<token>/pdf?lang=es"
    assert hidden["url"] == "http://reports/shared/lakeside/<token>"
    assert hidden["other"] == line["other"]
    assert "Zm9vYmFyYmF6cXV4" not in str(hidden)
