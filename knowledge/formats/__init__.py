"""Readers for the office and data formats (PPTX, XLSX, CSV, JSON); `knowledge.extract` picks
one by file extension and runs it inside the extraction sandbox."""
