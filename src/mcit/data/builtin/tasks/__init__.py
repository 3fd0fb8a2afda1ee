"""The eight tasks of the built-in stream, one file each."""
