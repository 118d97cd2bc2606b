"""Fixtures of the reports tests."""

from tests.integration.reports.district import stack

__all__ = ["stack"]
