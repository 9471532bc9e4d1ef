"""Word lists of the personal-data guard, as data: one entry per line, read once at import.

See ``rules.personal_data.words_data`` for the format.
"""
