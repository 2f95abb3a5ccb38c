"""Bounded fuzz of the file extractors (the long run: `manage.py fuzz_extract --seconds 600`):
mutated sample files of every supported type read to text or an ExtractionError, nothing else."""

import os

from knowledge.management.commands.fuzz_extract import FUZZ_TYPES, run_fuzz

# About 5 s here; RAGSITE_TEST_LONG (make test-long) runs ten times as many.
PER_TYPE = 300 if os.environ.get("RAGSITE_TEST_LONG") else 30


def test_mutated_files_are_text_or_extraction_errors():
    report = run_fuzz(seed=20260, per_type=PER_TYPE)
    assert report.files == PER_TYPE * len(FUZZ_TYPES)
    assert [(kind, detail) for kind, detail, _ in report.findings] == []
    # The mutations reach both outcomes: files that still read and files refused.
    assert report.outcomes["text"] > 0 and report.outcomes["error"] > 0
