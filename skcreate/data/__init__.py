"""The data layer: interaction frames and their encoding, preprocessing, splitters, metrics,
data sets. It imports nothing else of skcreate."""
