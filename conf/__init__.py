"""The config groups, as a package so that Hydra finds them as `pkg://miga.conf`.

The repository keeps them here at its top level; `miga/conf` links to this folder, so the same
files are `miga.conf` from a checkout, an editable install and the built wheel (package data).
"""
