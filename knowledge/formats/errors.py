class ExtractionError(ValueError):
    """A file that cannot be read, with a message written for the staff member who uploaded it."""
