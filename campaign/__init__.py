"""The campaign on disk: catalog, published tables, vote journals, media, items and the annotation task."""
