"""Maintainer scripts for the template itself, run as ``python -m scripts.<name>``; not rendered."""
