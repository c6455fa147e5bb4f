"""The index: resources, main tags, precomputed metadata, changes and exports. Knows no HTTP."""
