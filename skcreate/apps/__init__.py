"""Applications of the estimators: the command line, the comparison of models, plots, loading
model files and the migration of old parameter spellings."""
