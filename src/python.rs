//! The Python module (feature `python`).
